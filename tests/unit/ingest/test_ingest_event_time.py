"""A read's time must lie within ``event_time`` of its receipt, for pushed events and imported files alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gantry.config import GantryConfig
from ingest.edge_formats import parse_gantry_json
from ingest.examples import gantry_json
from ingest.reads import ReadRejected, find_bad_lines, make_read
from ingest.snapshots import SnapshotStore

RECEIVED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JPEG = b"\xff\xd8overview"


@pytest.mark.parametrize(("ts", "key"), [
    (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "max_future_s"),
    (RECEIVED + timedelta(minutes=10), "max_future_s"),
    (datetime(1970, 1, 1, tzinfo=UTC), "max_past_s"),
])
def test_a_read_outside_the_window_is_rejected_before_its_pictures_are_stored(tmp_path, ts, key) -> None:
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    event = parse_gantry_json(gantry_json("AB12CDE", ts, "e1", overview_image=JPEG))
    with pytest.raises(ReadRejected, match=f"ts: .*event_time.{key}"):
        make_read(event, "cam-1", RECEIVED, store, GantryConfig().event_time)
    assert not any(p.is_file() for p in (tmp_path / "snaps").rglob("*"))


def test_a_read_within_the_window_keeps_its_own_time(tmp_path) -> None:
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    ts = RECEIVED - timedelta(days=2)
    read = make_read(parse_gantry_json(gantry_json("AB12CDE", ts, "e1")), "cam-1", RECEIVED, store,
                     GantryConfig().event_time)
    assert read.ts == ts


def test_strict_import_finds_lines_outside_the_window(tmp_path) -> None:
    now = datetime.now(UTC)
    lines = tmp_path / "reads.jsonl"
    lines.write_text("\n".join(gantry_json(plate, ts, plate, camera_id="cam-1").decode() for plate, ts in (
        ("OK1", now - timedelta(hours=1)), ("FUT1", datetime(2100, 1, 1, tzinfo=UTC)), ("OLD1", now - timedelta(days=30)),
    )) + "\n")
    bad = find_bad_lines(lines, GantryConfig(), None)
    assert [(b.number, "event_time" in b.reason) for b in bad] == [(2, True), (3, True)]
