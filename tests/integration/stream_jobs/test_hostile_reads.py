"""Reads (and journeys) timed far outside the event-time window: dead letters with the reason, and
the worker goes on."""

from datetime import UTC, datetime

import pytest
from jobs_helpers import Worker, read_topic, write_config

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.events import (
    DeadLetter,
    HotlistEntry,
    HotlistHit,
    Journey,
    PlateRead,
    ZoneCharge,
    decode,
    encode,
    now_utc,
)
from gantry.kafka import ensure_topics, producer
from stream_jobs.hotlist import store
from stream_jobs.plate_job import READS_BY_PLATE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker():
    """A broker of its own: this test charges a read timed now, which closes the days before it
    on the partition, and the jobs' changelogs would carry that into later tests' old days."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running.bootstrap_servers


def hostile(read_id: str, ts: str) -> bytes:
    """A read as a producer outside Gantry may write it, timed anywhere."""
    return (b'{"v":1,"read_id":"%s","camera_id":"cam-h1","ts":"%s","plate":"HX01FAR","confidence":0.9}'
            % (read_id.encode(), ts.encode()))


def test_far_future_reads_are_dead_letters_and_the_worker_keeps_screening_and_charging(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {
        "cameras": [{"id": "cam-h1", "lat": 51.5, "lon": 0}],
        "zones": [{"id": "hostile-zone", "cameras": ["cam-h1"]}],
    })
    store.publish(broker, [HotlistEntry(plate="HX02OK", list="stolen", reason="test", priority=1)])
    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()

    send = producer(broker)
    send.send(topics.PLATE_READS, key=b"HX01FAR", value=hostile("hx-9999", "9999-12-31T23:59:59.999+00:00"))
    send.send(topics.PLATE_READS, key=b"HX01FAR", value=hostile("hx-2100", "2100-01-01T00:00:00+00:00"))
    send.send(READS_BY_PLATE, key=b"HX01FAR", value=hostile("hx-rekeyed", "9999-12-31T23:59:59+00:00"))
    journey = Journey(journey_id="hx-journey", segment_id="hx-seg", plate_pseudonym="p", start_ts=now_utc(),
                      end_ts=datetime(9999, 12, 31, 23, 59, tzinfo=UTC), travel_s=1, speed_kmh=1,
                      from_read_id="hx-a", to_read_id="hx-b")
    send.send(topics.JOURNEYS, key=b"hx-seg|0", value=encode(journey))
    send.flush()
    normal = PlateRead(read_id="hx-ok", camera_id="cam-h1", ts=now_utc(), plate="HX02OK", confidence=0.9)
    send.send(topics.PLATE_READS, key=normal.plate.encode(), value=encode(normal))
    send.flush()

    def ours(messages: list[bytes]) -> dict[str, DeadLetter]:
        letters = (decode(DeadLetter, m) for m in messages)
        return {letter.payload.split('_id":"')[1].split('"')[0]: letter
                for letter in letters if '_id":"hx-' in letter.payload}

    letters = ours(read_topic(broker, topics.DEAD_LETTERS, until=lambda m: len(ours(m)) >= 4, timeout_s=60))
    assert set(letters) == {"hx-9999", "hx-2100", "hx-rekeyed", "hx-journey"}
    assert all("event_time.max_future_s" in letter.reason for letter in letters.values())
    assert letters["hx-rekeyed"].source_topic == READS_BY_PLATE
    assert letters["hx-journey"].source_topic == topics.JOURNEYS

    hits = [h for h in map(lambda m: decode(HotlistHit, m), read_topic(
        broker, topics.HOTLIST_HITS, until=lambda m: any(b"hx-ok" in v for v in m), timeout_s=60)) if h.read_id == "hx-ok"]
    assert hits and hits[0].listed_plate == "HX02OK"
    charges = [c for c in map(lambda m: decode(ZoneCharge, m), read_topic(
        broker, topics.ZONE_CHARGES, until=lambda m: any(b"hx-ok" in v for v in m), timeout_s=60))
        if c.first_read_id == "hx-ok"]
    assert charges  # the per-plate job, which the far-future reads would have stopped, still charges
    assert worker.proc.poll() is None
