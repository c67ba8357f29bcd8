"""2N's limits on a holder's plates (20 plates, 10 characters each, spaces ignored), refused at
list import with the line of each row that breaks them."""

import pytest

from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry
from sites.holders import holder_problems
from stream_jobs.hotlist.store import read_csv


def rows(*entries: tuple[str, str, str | None]) -> list[tuple[int, HotlistEntry]]:
    return [(n + 2, HotlistEntry(plate=p, list=lst, holder=h)) for n, (p, lst, h) in enumerate(entries)]


def test_twenty_plates_and_ten_characters_spaces_ignored_are_within_the_limits():
    fleet = [(f"FL{n:03d}", "staff", "fleet-1") for n in range(20)]
    assert holder_problems(rows(*fleet, ("AB 12 CDE 345", "staff", "u-7"), ("NOHOLDER123", "visitors", None))) == []


def test_a_twenty_first_plate_and_a_long_plate_are_refused_by_line():
    fleet = [(f"FL{n:03d}", "staff", "fleet-1") for n in range(21)]
    found = holder_problems(rows(*fleet, ("AB12CDE3456", "staff", "u-7")))
    assert [(line, column) for line, column, _ in found] == [(22, "holder"), (23, "plate")]
    assert "fleet-1 already has 20 plates (lines 2-21)" in found[0][2]
    assert "AB12CDE3456 has 11 characters" in found[1][2]


def test_a_plate_on_several_lists_counts_once_for_its_holder():
    household = [(f"HH{n:03d}", "residents", "home-3") for n in range(20)]
    assert holder_problems(rows(*household, ("HH000", "permit", "home-3"))) == []
    assert len(holder_problems(rows(*household, ("HH999", "permit", "home-3")))) == 1


def write(path, lines: list[str]):
    path.write_text("plate,list,holder\n" + "".join(f"{line}\n" for line in lines))
    return path


def test_the_import_refuses_the_whole_file_naming_each_line(tmp_path):
    lines = [f"FL {n:03d},staff,fleet-1" for n in range(21)] + ["AB12-CDE-3456,staff,u-7", "AB12 CDE 345,staff,u-7"]
    path = write(tmp_path / "lists.csv", lines)
    with pytest.raises(InvalidEvent) as refused:
        read_csv(path)
    assert str(refused.value).splitlines()[1:] == [
        f"{path}:22: holder: fleet-1 already has 20 plates (lines 2-21); at most 20 per holder",
        f"{path}:23: plate: AB12CDE3456 has 11 characters; a holder's plate has at most 10 (spaces ignored)"]
    assert len(read_csv(write(tmp_path / "ok.csv", lines[:20] + lines[-1:]))) == 21


def test_the_hotlists_plates_of_a_holder_count_but_for_the_entries_the_file_replaces(tmp_path):
    on_the_hotlist = [HotlistEntry(plate=f"FL{n:03d}", list="staff", holder="fleet-1") for n in range(18)]
    path = write(tmp_path / "more.csv", ["FL017,staff,fleet-1", "FL100,staff,fleet-1", "FL101,permit,fleet-1",
                                         "FL102,staff,fleet-1"])
    with pytest.raises(InvalidEvent) as refused:
        read_csv(path, on_the_hotlist)
    assert str(refused.value).splitlines()[1:] == [
        f"{path}:5: holder: fleet-1 already has 20 plates (17 on the hotlist, lines 2-4); at most 20 per holder"]
    assert len(read_csv(path, on_the_hotlist[1:])) == 4  # one plate fewer on the hotlist: 20 in all
