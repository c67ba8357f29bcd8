"""Snapshots in an S3-compatible bucket: `gantry ingest serve` stores them, `prune-snapshots` expires them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from typer.testing import CliRunner

from gantry import topics
from gantry.broker import free_port
from gantry.config import RetentionConfig, load_config
from gantry.events import PlateRead, decode
from ingest.cli import app
from ingest.examples import gantry_json
from ingest.snapshots import SnapshotStore
from warehouse.client import connect
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration

ONE = {"X-Gantry-Token": "token-one", "Content-Type": "application/json"}
JPEG_PLATE = b"\xff\xd8\xff\xe0s3-plate"
JPEG_OVERVIEW = b"\xff\xd8\xff\xe0s3-overview"


@pytest.fixture(scope="module")
def s3_server(s3, broker, make_server, tmp_path_factory):
    """A server whose snapshot_url is the bucket; its gantry.yaml holds no credentials (they are in the env).

    It admits reads up to a year old (an importer's backlog), so that pictures older than the
    snapshot retention can be stored and then pruned.
    """
    running = make_server(
        broker.bootstrap_servers, tmp_path_factory.mktemp("s3"), snapshot_url=s3.url("pictures"),
        event_time={"max_past_s": 365 * 86400},
    )
    assert "gantry-test" not in (running.tmp / "gantry.yaml").read_text()
    running.start()
    yield running
    running.stop()


def post_read(server, plate: str, ts: datetime, **pictures: bytes) -> str:
    """POST one Gantry-JSON read as cam-1; returns its read_id."""
    answer = httpx.post(
        f"{server.url}/v1/reads", content=gantry_json(plate, ts, f"evt-{plate}", **pictures), headers=ONE
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["read_id"]


def picture_key(ts: datetime, read_id: str, kind: str) -> str:
    """Where the server stores a cam-1 picture under the ``pictures`` prefix."""
    return f"pictures/{ts.date().isoformat()}/cam-1/{read_id}-{kind}.jpg"


def read_of(topic_records, broker, plate: str) -> PlateRead:
    (record,) = topic_records(broker.bootstrap_servers, topics.PLATE_READS, plate.encode(), 1)
    return decode(PlateRead, record.value)


def objects(s3, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=s3.bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_posted_pictures_are_stored_in_the_bucket_and_read_back(s3, s3_server, broker, topic_records) -> None:
    ts = datetime.now(UTC)
    read_id = post_read(s3_server, "S3PIX1", ts, plate_image=JPEG_PLATE, overview_image=JPEG_OVERVIEW)
    read = read_of(topic_records, broker, "S3PIX1")
    overview, plate = (picture_key(ts, read_id, kind) for kind in ("overview", "plate"))
    assert read.read_id == read_id
    assert read.image_ref == f"s3://{s3.bucket}/{overview}"
    assert objects(s3, overview.removesuffix("overview.jpg")) == {overview: JPEG_OVERVIEW, plate: JPEG_PLATE}
    assert not [key for key in objects(s3, "pictures/") if key.endswith("/")], "no folder marker objects"
    store = SnapshotStore(s3.url("pictures"))
    assert store.get(read.image_ref) == JPEG_OVERVIEW
    with pytest.raises(ValueError, match="not a picture of the snapshot store"):
        store.get(f"s3://{s3.bucket}/elsewhere/{read_id}-overview.jpg")
    listed = httpx.get(f"{s3_server.url}/v1/devices/cam-1/snapshots", headers=ONE).json()["snapshots"]
    assert listed[0]["read_id"] == read_id and listed[0]["image_ref"] == read.image_ref  # from the bucket
    fetched = httpx.get(f"{s3_server.url}/v1/devices/cam-1/snapshots/{read_id}", headers=ONE)
    assert fetched.content == JPEG_OVERVIEW


def test_prune_keeps_each_picture_as_long_as_the_longest_lived_row_that_refers_to_it(
        s3, s3_server, broker, chdb_dsn) -> None:
    """Reads are kept 90 days, hits 100, charges 120: a picture of a read older than 90 days stays
    only while a hit or a charge within its retention refers to it."""
    config = load_config(s3_server.tmp / "gantry.yaml")
    retention = config.warehouse.retention_days.plate_reads
    now = datetime.now(UTC)
    ages = {"fresh": 0, "last kept": retention, "expired": retention + 1, "charged": retention + 5,
            "charged, another read": retention + 5, "hit": retention + 5, "hit expired": retention + 11,
            "charge expired": retention + 31}
    refs = {}
    for n, (what, days) in enumerate(ages.items()):
        ts = now - timedelta(days=days)
        read_id = post_read(s3_server, f"S3AGE{n}", ts, overview_image=JPEG_OVERVIEW)
        refs[what] = (ts, read_id, s3.url(picture_key(ts, read_id, "overview")).split("?")[0])
    database = f"test_{uuid.uuid4().hex[:12]}"
    settings = {"GANTRY_WAREHOUSE__DSN": chdb_dsn, "GANTRY_WAREHOUSE__DATABASE": database,
                "GANTRY_WAREHOUSE__RETENTION_DAYS__HOTLIST_HITS": "100",
                "GANTRY_WAREHOUSE__RETENTION_DAYS__ZONE_CHARGES": "120"}
    client = connect(chdb_dsn, database)
    migrate(client, RetentionConfig(hotlist_hits=100, zone_charges=120))
    charges = [_charged(refs[what], plate) for what, plate in (("charged", "S3AGE3"), ("charge expired", "S3AGE7"))]
    hits = [_hit(refs[what], plate) for what, plate in (("hit", "S3AGE5"), ("hit expired", "S3AGE6"))]
    client.insert("zone_charges", charges, column_names=list(CHARGE_COLUMNS))
    client.insert("hotlist_hits", hits, column_names=list(HIT_COLUMNS))

    result = CliRunner().invoke(app, ["prune-snapshots"],
                                env={"GANTRY_CONFIG": str(s3_server.tmp / "gantry.yaml"), **settings})
    client.command(f"DROP DATABASE `{database}`", use_database=False)
    client.close()

    assert result.exit_code == 0, result.output
    gone = sorted({refs[w][0].date().isoformat() for w in ("expired", "hit expired", "charge expired")})
    assert f"deleted the pictures of 3 days no row refers to any more ({', '.join(gone)})" in result.output
    assert "1 pictures of reads older than 90 days" in result.output and "kept 2 as the evidence" in result.output
    for what, (ts, read_id, _) in refs.items():
        key = picture_key(ts, read_id, "overview")
        kept = what in ("fresh", "last kept", "charged", "hit")
        assert objects(s3, key) == ({key: JPEG_OVERVIEW} if kept else {}), what


CHARGE_COLUMNS = ("v", "charge_id", "zone_id", "plate", "charge_date", "vehicle_class", "status", "amount",
                  "currency", "first_read_ts", "first_camera_id", "first_read_id", "read_count", "version",
                  "image_ref")  # fmt: skip
HIT_COLUMNS = ("v", "hit_id", "read_id", "camera_id", "ts", "plate", "listed_plate", "list", "reason", "priority",
               "match", "confidence", "image_ref")  # fmt: skip


def _charged(read: tuple, plate: str) -> tuple:
    ts, read_id, ref = read
    return (1, f"charge-{read_id}", "zone-a", plate, ts.date(), "car", "charged", Decimal("15.00"), "GBP", ts,
            "cam-1", read_id, 1, 1, ref)


def _hit(read: tuple, plate: str) -> tuple:
    ts, read_id, ref = read
    return (1, f"hit-{read_id}", read_id, "cam-1", ts, plate, plate, "stolen", "", 1, "exact", 0.9, ref)


def test_unreachable_bucket_is_503_for_reads_with_pictures_only(s3, broker, make_server, tmp_path) -> None:
    nowhere = f"s3://{s3.bucket}/pictures?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    running = make_server(broker.bootstrap_servers, tmp_path, snapshot_url=nowhere)
    running.start()
    try:
        ts = datetime.now(UTC)
        answer = httpx.post(
            f"{running.url}/v1/reads",
            content=gantry_json("S3DOWN1", ts, "evt-down", overview_image=JPEG_OVERVIEW),
            headers=ONE,
            timeout=30,
        )
        assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "5"), answer.text
        assert "snapshot store is unavailable" in answer.text
        assert post_read(running, "S3DOWN2", ts)  # no pictures, nothing to store: accepted
        assert running.alive
    finally:
        running.stop()
