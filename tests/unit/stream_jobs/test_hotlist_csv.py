from pathlib import Path

import pytest

from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry
from stream_jobs.hotlist.store import read_csv, write_csv


def test_round_trip(tmp_path: Path):
    entries = [HotlistEntry(plate="AB12CDE", list="stolen", reason="reported 21 Nov", priority=1,
                            valid_until="2027-01-01T00:00:00Z")]
    write_csv(tmp_path / "h.csv", entries)
    assert read_csv(tmp_path / "h.csv") == entries


def test_every_bad_row_is_reported_by_line_and_nothing_is_returned(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("plate,list,priority\nAB12CDE,stolen,1\n,stolen,1\nXY99ZZZ,wanted,7\nOK11AAA,permit,5\n")
    with pytest.raises(InvalidEvent) as err:
        read_csv(path)
    message = str(err.value)
    assert "2 bad row(s), nothing imported" in message
    assert f"{path}:3: plate" in message and f"{path}:4: priority" in message


def test_missing_columns_and_unreadable_files_are_clear(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("number,list\nAB12CDE,stolen\n")
    with pytest.raises(InvalidEvent, match="missing column"):
        read_csv(path)
    with pytest.raises(InvalidEvent, match="cannot read"):
        read_csv(tmp_path / "absent.csv")


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_bytes("plate,list\r\nAB12CDE,stolen\r\n".encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    assert read_csv(path) == [HotlistEntry(plate="AB12CDE", list="stolen")]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("plate,list\nAB12CDE,stolen\nBÉ12CDE,wanted\n".encode("cp1252"), r"h.csv:3: not UTF-8 text \(byte 0xc9\)"),
        ("plate,list\nAB12CDE,stolen\n".encode("utf-16"), r"h.csv:1: not UTF-8 text \(byte 0xff\)"),
        (b'plate,list\nAB12CDE,"' + b"x" * 200_000 + b'"\n', r"h.csv:2: not CSV: field larger than field limit"),
        (b"plate,list,plate\nAB12CDE,stolen,XY99ZZZ\n", r"h.csv:1: column\(s\) plate named twice"),
        (b"plate,list\nAB12CDE,stolen,theft\n", r"h.csv:2: 3 values for the header's 2 columns"),
    ],
)
def test_files_that_are_not_utf8_csv_are_refused_by_line(tmp_path: Path, data: bytes, says: str):
    path = tmp_path / "h.csv"
    path.write_bytes(data)
    with pytest.raises(InvalidEvent, match=says):
        read_csv(path)
