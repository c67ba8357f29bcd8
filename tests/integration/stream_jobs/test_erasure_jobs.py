"""`gantry privacy erase` while a worker runs: the plate's past leaves the per-plate job's state
and changelog, its older reads still in Kafka are neither tracked nor screened, and a new
sighting is charged alone."""

from datetime import timedelta

import orjson
import pytest
from jobs_helpers import Worker, read_topic, run_gantry, write_config

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.events import HotlistEntry, HotlistHit, Journey, PlateRead, ZoneCharge, decode, encode, now_utc
from gantry.kafka import ensure_topics, producer, replay
from stream_jobs.hotlist import store

pytestmark = pytest.mark.integration
PLATE = "ER4SEME"


@pytest.fixture(scope="module")
def broker():
    """A broker of its own: reads timed now close the days before them in the jobs' changelogs."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running.bootstrap_servers


def read(read_id: str, camera: str, ts) -> PlateRead:
    return PlateRead(read_id=read_id, camera_id=camera, ts=ts, plate=PLATE, confidence=0.9)


def charges_of(broker: str, until) -> list[ZoneCharge]:
    found = [decode(ZoneCharge, m) for m in read_topic(broker, topics.ZONE_CHARGES, until=lambda m: until(
        [decode(ZoneCharge, v) for v in m]), timeout_s=60)]
    return [c for c in found if c.plate == PLATE]


def test_an_erased_plate_leaves_the_jobs_and_only_new_sightings_count(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {
        "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in ("er-a", "er-b")],
        "segments": [{"id": "er-seg", "from_camera": "er-a", "to_camera": "er-b", "distance_m": 1000}],
        "zones": [{"id": "er-zone", "cameras": ["er-a"]}],
    })
    assert run_gantry(config, "warehouse", "migrate").returncode == 0
    store.publish(broker, [HotlistEntry(plate=PLATE, list="stolen", reason="test", priority=1)])
    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()
    start = now_utc() - timedelta(minutes=10)
    send = producer(broker)
    for r in (read("er-1", "er-a", start), read("er-2", "er-b", start + timedelta(minutes=2))):
        send.send(topics.PLATE_READS, key=PLATE.encode(), value=encode(r))
    send.flush()
    assert [j.from_read_id for j in map(lambda m: decode(Journey, m), read_topic(
        broker, topics.JOURNEYS, until=lambda m: any(b"er-2" in v for v in m)))] == ["er-1"]
    assert charges_of(broker, lambda cs: any(c.first_read_id == "er-1" for c in cs))

    erased = run_gantry(config, "privacy", "erase", "--plate", PLATE, "--reason", "REF-9", "--actor", "dpo")
    assert erased.returncode == 0, erased.stderr
    assert "late_reads" in erased.stdout and "no end set" in erased.stdout  # what Kafka still holds

    # Reads from before the erasure that were still in Kafka (one re-keyed) change nothing; a new
    # sighting is charged from itself alone.
    send.send(topics.PLATE_READS, key=PLATE.encode(), value=encode(read("er-3", "er-a", start + timedelta(minutes=1))))
    send.send(topics.READS_BY_PLATE, key=PLATE.encode(), value=encode(read("er-4", "er-a", start + timedelta(minutes=3))))
    send.send(topics.PLATE_READS, key=PLATE.encode(), value=encode(read("er-new", "er-a", now_utc())))
    send.flush()
    after = charges_of(broker, lambda cs: any(c.first_read_id == "er-new" for c in cs))
    latest = [c for c in after if c.first_read_id == "er-new"]
    assert [(c.read_count, c.version) for c in latest] == [(1, 1)]
    assert not [c for c in after if c.first_read_id in ("er-3", "er-4")]
    assert not [m for m in read_topic(broker, topics.LATE_READS, idle_s=2) if b"er-3" in m or b"er-4" in m]
    hits = {decode(HotlistHit, m).read_id for m in read_topic(broker, topics.HOTLIST_HITS, idle_s=2)}
    assert hits == {"er-1", "er-2", "er-new"}  # the screener leaves the erased past alone too
    latest = {r.partition: r.value for r in replay(broker, topics.PLATE_HISTORIES) if r.key == PLATE.encode()}
    (entry,) = [value for value in latest.values() if value is not None]  # tombstones elsewhere
    assert [s[2] for s in orjson.loads(entry)["sightings"]] == ["er-new"]
    assert worker.proc.poll() is None
