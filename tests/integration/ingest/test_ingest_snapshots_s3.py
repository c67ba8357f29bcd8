"""Snapshots in an S3-compatible bucket: `gantry ingest serve` stores them, `prune-snapshots` expires them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from gantry import topics
from gantry.broker import free_port
from gantry.config import load_config
from gantry.events import PlateRead, decode
from ingest.cli import app
from ingest.examples import gantry_json
from ingest.snapshots import SnapshotStore

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


def test_prune_deletes_expired_days_in_the_bucket_and_keeps_fresh_ones(s3, s3_server, broker) -> None:
    config = load_config(s3_server.tmp / "gantry.yaml")
    retention = config.warehouse.retention_days.plate_reads
    now = datetime.now(UTC)
    days = {
        "expired": now - timedelta(days=retention + 1),
        "last kept": now - timedelta(days=retention),
        "fresh": now,
    }
    keys = {
        age: picture_key(ts, post_read(s3_server, f"S3AGE{n}", ts, overview_image=JPEG_OVERVIEW), "overview")
        for n, (age, ts) in enumerate(days.items())
    }
    assert set(keys.values()) <= set(objects(s3, "pictures/"))

    result = CliRunner().invoke(
        app, ["prune-snapshots"], env={"GANTRY_CONFIG": str(s3_server.tmp / "gantry.yaml")}
    )

    assert result.exit_code == 0, result.output
    expired = days["expired"].date().isoformat()
    assert f"deleted pictures of 1 days older than {retention} days: {expired}" in result.output
    assert objects(s3, f"pictures/{expired}/") == {}
    assert objects(s3, keys["last kept"]) == {keys["last kept"]: JPEG_OVERVIEW}
    assert objects(s3, keys["fresh"]) == {keys["fresh"]: JPEG_OVERVIEW}


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
