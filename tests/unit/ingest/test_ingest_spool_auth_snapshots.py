"""The spool's order, bounds and crash safety; token lookup; snapshot layout and pruning."""

from __future__ import annotations

import base64
import os
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from gantry.config import IngestConfig
from gantry.errors import ConfigError
from ingest.auth import TokenBook, load_tokens
from ingest.quarantine import Quarantine
from ingest.snapshots import SnapshotStore
from ingest.spool import Spool, SpoolFull


def test_spool_keeps_arrival_order_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000, max_events=100)
    for n in range(12):
        spool.append("plate_reads", f"K{n}".encode(), f"value-{n}".encode())
    spool.remove(spool.head(1)[0].seq)
    reopened = Spool(tmp_path, max_bytes=10_000, max_events=100)
    assert [e.value for e in reopened.head(100)] == [f"value-{n}".encode() for n in range(1, 12)]
    reopened.append("plate_reads", b"K12", b"value-12")
    assert reopened.head(100)[-1].value == b"value-12" and len(reopened) == 12
    assert reopened.head(1)[0].key == b"K1" and reopened.head(1)[0].topic == "plate_reads"


def test_spool_refuses_beyond_its_bounds(tmp_path: Path) -> None:
    by_count = Spool(tmp_path / "count", max_bytes=10_000, max_events=2)
    by_count.append("t", b"k", b"1")
    by_count.append("t", b"k", b"2")
    with pytest.raises(SpoolFull):
        by_count.append("t", b"k", b"3")
    by_bytes = Spool(tmp_path / "bytes", max_bytes=1_024, max_events=100)
    by_bytes.append("t", b"k", b"x" * 900)
    with pytest.raises(SpoolFull):
        by_bytes.append("t", b"k", b"x" * 200)
    by_bytes.remove(by_bytes.head(1)[0].seq)
    by_bytes.append("t", b"k", b"x" * 200)
    assert len(by_bytes) == 1


def test_spool_drops_half_written_events_of_a_crash(tmp_path: Path) -> None:
    Spool(tmp_path, 10_000, 10).append("t", b"k", b"whole")
    (tmp_path / "00000000000000000099.tmp").write_bytes(b"t\n1\nkhal")
    reopened = Spool(tmp_path, 10_000, 10)
    assert [e.value for e in reopened.head(10)] == [b"whole"]
    assert not list(tmp_path.glob("*.tmp"))


def test_spool_sets_aside_files_that_hold_no_whole_event_with_the_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000, 10)
    for n in (1, 2, 3):
        spool.append("plate_reads", b"K", f"value-{n}".encode())
    cut_short = tmp_path / f"{2:020d}.event"
    cut_short.write_bytes(cut_short.read_bytes()[:-3])
    (tmp_path / f"{9:020d}.event").write_bytes(b"junk")
    (tmp_path / "notes.event").write_text("not ours")
    reopened = Spool(tmp_path, 10_000, 10)
    assert [e.value for e in reopened.head(10)] == [b"value-1", b"value-3"]
    assert len(reopened) == 2 and reopened.size_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.event"))
    assert sorted(Quarantine.reason(p) for p in reopened.quarantine.held()) == [
        f"{2:020d}.event: truncated or corrupt: the header announces 8 bytes, 5 follow",
        f"{9:020d}.event: no spool header (topic, key length, value length)",
        "notes.event: not a spool event (<number>.event)",
    ]
    assert reopened.quarantine.held()[0].read_text() == "not ours"  # set aside at start-up, whole
    assert [e.value for e in Spool(tmp_path, 10_000, 10).head(10)] == [b"value-1", b"value-3"]


def test_tokens_from_file_and_env_env_wins(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text("cam-1: file-secret\ncam-2: two\n")
    settings = IngestConfig(tokens_file=tokens_file)
    tokens = load_tokens(settings, {"GANTRY_INGEST_TOKENS": "cam-1=env-secret, cam-3=three"})
    assert {k: v.get_secret_value() for k, v in tokens.items()} == {
        "cam-1": "env-secret",
        "cam-2": "two",
        "cam-3": "three",
    }


def test_malformed_token_sources_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GANTRY_INGEST_TOKENS"):
        load_tokens(IngestConfig(), {"GANTRY_INGEST_TOKENS": "cam-1"})
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_tokens(IngestConfig(tokens_file=tmp_path / "missing.yaml"), {})


def test_token_book_accepts_three_header_styles() -> None:
    book = TokenBook(load_tokens(IngestConfig(), {"GANTRY_INGEST_TOKENS": "cam-1=s3cret"}))
    basic = base64.b64encode(b"admin:s3cret").decode()
    assert book.camera_of({"X-Gantry-Token": "s3cret"}) == "cam-1"
    assert book.camera_of({"Authorization": "Bearer s3cret"}) == "cam-1"
    assert book.camera_of({"Authorization": f"Basic {basic}"}) == "cam-1"
    assert book.camera_of({"X-Gantry-Token": "guess"}) is None
    assert book.camera_of({"Authorization": "Basic !!!"}) is None
    assert book.camera_of({}) is None


def test_snapshots_stored_by_day_and_pruned_by_retention(tmp_path: Path) -> None:
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    old = store.put(datetime(2026, 1, 1, 12, tzinfo=UTC), "cam-1", "r1", "plate", b"\xff\xd8old")
    new = store.put(datetime(2026, 11, 20, 12, tzinfo=UTC), "cam-1", "r2", "overview", b"\xff\xd8new")
    assert new == (tmp_path / "snaps/2026-11-20/cam-1/r2-overview.jpg").as_uri()
    assert Path(new.removeprefix("file://")).read_bytes() == b"\xff\xd8new"
    (tmp_path / "snaps" / "not-a-day").mkdir()
    asked = []
    pruned = store.prune(date(2026, 11, 21), reads_days=90, longest_days=730, evidence=lambda day: asked.append(day) or [])
    assert (pruned.days_deleted, pruned.pictures_deleted, pruned.pictures_kept) == (["2026-01-01"], 0, 0)
    assert asked == [date(2026, 1, 1)]  # the warehouse is asked only about days past the reads' retention
    assert not Path(old.removeprefix("file://")).exists() and Path(new.removeprefix("file://")).exists()
    assert (tmp_path / "snaps" / "not-a-day").exists()


def test_a_day_past_the_reads_retention_keeps_only_the_pictures_rows_still_refer_to(tmp_path: Path) -> None:
    """Both pictures of a read that a charge refers to stay; the rest of the day goes; a day past
    every retention goes whole without asking."""
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    ts = datetime(2026, 6, 1, 12, tzinfo=UTC)
    charged = store.put(ts, "cam-1", "r-charged", "overview", b"\xff\xd8o")
    store.put(ts, "cam-1", "r-charged", "plate", b"\xff\xd8p")
    store.put(ts, "cam-2", "r-passing", "overview", b"\xff\xd8x")
    store.put(datetime(2018, 1, 1, tzinfo=UTC), "cam-1", "r-ancient", "plate", b"\xff\xd8a")
    evidence = {date(2026, 6, 1): [charged, "s3://elsewhere/2026-06-01/cam-1/r-passing-overview.jpg"]}
    pruned = store.prune(date(2026, 11, 21), reads_days=90, longest_days=2555, evidence=lambda day: evidence[day])
    assert (pruned.days_deleted, pruned.pictures_deleted, pruned.pictures_kept) == (["2018-01-01"], 1, 2)
    left = sorted(p.relative_to(tmp_path / "snaps").as_posix() for p in (tmp_path / "snaps").rglob("*.jpg"))
    assert left == ["2026-06-01/cam-1/r-charged-overview.jpg", "2026-06-01/cam-1/r-charged-plate.jpg"]


def test_a_cameras_latest_reads_with_pictures_come_from_the_store_newest_first(tmp_path: Path) -> None:
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    stored_at = iter(range(1_800_000_000, 1_800_001_000, 10))

    def put(day: int, camera: str, read_id: str, *kinds: str) -> None:
        for kind in kinds:
            ref = store.put(datetime(2026, 12, day, 12, tzinfo=UTC), camera, read_id, kind, b"\xff\xd8" + kind.encode())
            t = next(stored_at)
            os.utime(Path(unquote(urlsplit(ref).path)), (t, t))

    for n in range(4):
        put(1, "gate-1", f"old-{n}", "plate")
    put(2, "gate-1", "r-0", "plate", "overview")
    put(2, "gate-2", "other-camera", "plate")
    put(3, "gate-1", "r-1", "overview")
    put(3, "gate-1", "r-2", "plate")
    put(2, "gate-1", "late", "plate")  # stored last, in the folder of its own, earlier day
    assert [r.read_id for r in store.latest("gate-1", 2)] == ["late", "r-2"]  # the newest day holds two
    latest = store.latest("gate-1", 3)
    assert [r.read_id for r in latest] == ["late", "r-2", "r-1"]
    assert latest[0].stored_at > latest[1].stored_at > latest[2].stored_at
    assert [r.read_id for r in store.latest("gate-1", 5)] == ["late", "r-2", "r-1", "r-0", "old-3"]
    r0 = store.latest("gate-1", 4)[3]
    assert r0.image_ref.endswith("/r-0-overview.jpg") and store.get(r0.image_ref) == b"\xff\xd8overview"
    assert [r.read_id for r in store.latest("gate-2", 5)] == ["other-camera"]
    assert store.latest("gate-9", 5) == []
    store.erase(r0.image_ref)
    assert "r-0" not in [r.read_id for r in store.latest("gate-1", 5)]


def test_snapshots_read_back_by_their_ref_and_only_from_their_store(tmp_path: Path) -> None:
    store = SnapshotStore((tmp_path / "snaps").as_uri())
    ref = store.put(datetime(2026, 11, 20, 12, tzinfo=UTC), "cam 1", "r3", "plate", b"\xff\xd8mine")
    assert store.get(ref) == b"\xff\xd8mine"
    (tmp_path / "other.jpg").write_bytes(b"\xff\xd8other")
    for foreign in ((tmp_path / "other.jpg").as_uri(), "s3://bucket/2026-11-20/cam-1/r3-plate.jpg"):
        with pytest.raises(ValueError, match="not a picture of the snapshot store"):
            store.get(foreign)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://AKIAEXAMPLE:s3cr3t@bucket/prefix", "credentials do not belong"),
        ("nosuch://bucket/prefix", "ingest.snapshot_url nosuch://bucket/prefix"),
    ],
)
def test_bad_snapshot_urls_are_config_errors_without_secrets(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        SnapshotStore(url)
    assert "s3cr3t" not in str(error.value) and "AKIAEXAMPLE" not in str(error.value)
