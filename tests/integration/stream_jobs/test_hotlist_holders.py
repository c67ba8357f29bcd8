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
