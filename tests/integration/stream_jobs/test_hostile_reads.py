"""Reads (and journeys) timed far outside the event-time window: dead letters with the reason, and
the worker goes on."""

import json
import random
import re
from datetime import UTC, datetime

import pytest
from jobs_helpers import Worker, read_topic, write_config

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig, load_config
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
from stream_jobs.intake import admit

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
    send.send(topics.READS_BY_PLATE, key=b"HX01FAR", value=hostile("hx-rekeyed", "9999-12-31T23:59:59+00:00"))
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
    assert letters["hx-rekeyed"].source_topic == topics.READS_BY_PLATE
    assert letters["hx-journey"].source_topic == topics.JOURNEYS

    hits = [h for h in map(lambda m: decode(HotlistHit, m), read_topic(
        broker, topics.HOTLIST_HITS, until=lambda m: any(b"hx-ok" in v for v in m), timeout_s=60)) if h.read_id == "hx-ok"]
    assert hits and hits[0].listed_plate == "HX02OK"
    charges = [c for c in map(lambda m: decode(ZoneCharge, m), read_topic(
        broker, topics.ZONE_CHARGES, until=lambda m: any(b"hx-ok" in v for v in m), timeout_s=60))
        if c.first_read_id == "hx-ok"]
    assert charges  # the per-plate job, which the far-future reads would have stopped, still charges
    assert worker.proc.poll() is None


def fuzzed_reads(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    """(marker, message) pairs as a broken or hostile producer writes them: cut short, noise,
    huge fields, times far in the past or future, non-ASCII plates, wrong types. Each carries its
    marker near the start, so its dead letter can be found."""
    def read(marker: str, **fields: object) -> dict:
        return {"v": 1, "read_id": marker, "camera_id": "cam-h1", "ts": now_utc().isoformat(), "plate": "FZ01ABC",
                "confidence": 0.9} | fields
    shapes = [
        lambda m: json.dumps(read(m)).encode()[: rng.randint(20, 60)],
        lambda m: m.encode() + b"|" + rng.randbytes(rng.randint(0, 2000)),
        lambda m: json.dumps(read(m, plate="A" * rng.randint(100, 200_000))).encode(),
        lambda m: json.dumps(read(m, camera_id="c" * rng.randint(100, 50_000))).encode(),
        lambda m: json.dumps(read(m, image_ref="x" * rng.randint(10_000, 300_000))).encode(),
        lambda m: json.dumps(read(m, ts=rng.choice(["0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00",
                                                    "9999-12-31T23:59:59+00:00", "2100-01-01T00:00:00Z",
                                                    "2026-13-45T99:99:99Z", "yesterday", ""]))).encode(),
        lambda m: json.dumps(read(m, plate=rng.choice(["京A12345", "🚗🚗", "\u0000\u0000", "", " ", "AB\u200b12"]))).encode(),
        lambda m: json.dumps(read(m, confidence=rng.choice([-1, 2, "high", None, 1e308]))).encode(),
        lambda m: json.dumps(read(m, read_id=[m], extra={"nested": [[[[m]]]]})).encode(),
        lambda m: b'{"read_id":"%s","v":1,' % m.encode() + b'"a":[' * 5000,
    ]
    return [(f"fz-{n}", rng.choice(shapes)(f"fz-{n}")) for n in range(count)]


def test_fuzzed_reads_are_each_dead_lettered_and_the_worker_goes_on(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {"cameras": [{"id": "cam-h1", "lat": 51.5, "lon": 0}]})
    store.publish(broker, [HotlistEntry(plate="FZ02OK", list="stolen", reason="test", priority=1),
                           HotlistEntry(plate="HX03OK", list="stolen", reason="test", priority=1)])
    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()

    fuzzed = fuzzed_reads(random.Random(19), 120)
    cyrillic = PlateRead(read_id="fz-cyrillic", camera_id="cam-h1", ts=now_utc(), plate="НХ03ОК", confidence=0.9)
    normal = PlateRead(read_id="fz-ok", camera_id="cam-h1", ts=now_utc(), plate="FZ02OK", confidence=0.9)
    send = producer(broker)
    for _, message in fuzzed:
        send.send(topics.PLATE_READS, key=b"FZ01ABC", value=message)
    for good in (cyrillic, normal):
        send.send(topics.PLATE_READS, key=good.plate.encode(), value=encode(good))
    send.flush()

    window, cameras = load_config(config).event_time, {"cam-h1"}
    refused = {marker for marker, message in fuzzed
               if isinstance(admit(message, cameras, window, now_utc()), DeadLetter)}
    assert len(refused) > 100  # nearly every shape is refused; a few huge image refs pass

    def lettered(messages: list[bytes]) -> set[str]:
        markers = (re.search(r"fz-\d+", decode(DeadLetter, m).payload[:200]) for m in messages)
        return {found.group() for found in markers if found}

    letters = lettered(read_topic(broker, topics.DEAD_LETTERS, until=lambda m: lettered(m) >= refused, timeout_s=90))
    assert letters == refused
    hits = {decode(HotlistHit, m).read_id: decode(HotlistHit, m) for m in read_topic(
        broker, topics.HOTLIST_HITS, until=lambda m: sum(b'"fz-ok"' in v or b'"fz-cyrillic"' in v for v in m) >= 2,
        timeout_s=60)}
    assert hits["fz-ok"].listed_plate == "FZ02OK"
    assert hits["fz-cyrillic"].listed_plate == "HX03OK"  # look-alike Cyrillic letters read as Latin
    assert worker.proc.poll() is None
