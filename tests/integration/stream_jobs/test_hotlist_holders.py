"""`gantry hotlist import` against the real broker: a holder's plates already on the hotlist count
towards 2N's 20, and a file that would pass them is refused by line, nothing imported."""

import pytest
from jobs_helpers import run_gantry, write_config

from gantry.events import HotlistEntry
from stream_jobs.hotlist import store

pytestmark = pytest.mark.integration


def test_an_import_counts_the_holders_plates_already_on_the_hotlist(broker, tmp_path):
    config = write_config(tmp_path / "gantry.yaml", broker, {})
    store.publish(broker, [HotlistEntry(plate=f"HD{n:03d}", list="staff", holder="holder-import") for n in range(19)])
    more = tmp_path / "more.csv"
    more.write_text("plate,list,holder\nHD100,permit,holder-import\nHD101,permit,holder-import\n")
    refused = run_gantry(config, "hotlist", "import", str(more))
    assert refused.returncode != 0
    assert f"{more}:3: holder: holder-import already has 20 plates (19 on the hotlist, line 2)" in refused.stderr
    assert {e.plate for e in store.current(broker) if e.holder == "holder-import"} == {f"HD{n:03d}" for n in range(19)}

    more.write_text("plate,list,holder\nHD100,permit,holder-import\n")
    assert run_gantry(config, "hotlist", "import", str(more)).returncode == 0
    assert len({e.plate for e in store.current(broker) if e.holder == "holder-import"}) == 20


def test_hotlist_add_with_a_holder_keeps_to_the_holders_limits(broker, tmp_path):
    config = write_config(tmp_path / "gantry.yaml", broker, {})
    store.publish(broker, [HotlistEntry(plate=f"HA{n:03d}", list="staff", holder="holder-add") for n in range(19)])
    assert run_gantry(config, "hotlist", "add", "--plate", "HA 100", "--list", "permit", "--holder", "holder-add").returncode == 0
    again = run_gantry(config, "hotlist", "add", "--plate", "HA000", "--list", "permit", "--holder", "holder-add")
    assert again.returncode == 0  # a plate the holder already has counts once, whatever its lists
    refused = run_gantry(config, "hotlist", "add", "--plate", "HA101", "--list", "permit", "--holder", "holder-add")
    assert refused.returncode != 0
    assert ("--holder: holder-add already has 20 plates (20 on the hotlist); at most 20 per holder; nothing added"
            in " ".join(refused.stderr.split()))
    long = run_gantry(config, "hotlist", "add", "--plate", "HA 12 CDE 3456", "--list", "permit", "--holder", "h-long")
    assert long.returncode != 0 and "--plate: HA12CDE3456 has 11 characters" in long.stderr
    ten = run_gantry(config, "hotlist", "add", "--plate", "HA 12 CDE 345", "--list", "permit", "--holder", "h-long")
    assert ten.returncode == 0
    held = {(e.plate, e.list) for e in store.current(broker) if e.holder in ("holder-add", "h-long")}
    assert len({plate for plate, _ in held}) == 21 and ("HA101", "permit") not in held
    assert ("HA12CDE345", "permit") in held and ("HA000", "permit") in held
    listed = run_gantry(config, "hotlist", "list", "--list", "permit")
    assert "holder-add" in listed.stdout and "h-long" in listed.stdout
