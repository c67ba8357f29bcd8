"""A plate read thousands of times within seconds at one camera (a parked car, a stuck camera, a
spammer) keeps its changelog entry small, and the worker charges and pairs it exactly."""

from datetime import timedelta

import orjson
import pytest
from jobs_helpers import Worker, read_topic, write_config

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.events import Journey, PlateRead, ZoneCharge, decode, encode, now_utc
from gantry.kafka import ensure_topics, producer, replay

pytestmark = pytest.mark.integration
READS = 5000


@pytest.fixture(scope="module")
def broker():
    """A broker of its own: reads timed now close the days before them in the jobs' changelogs."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running.bootstrap_servers


def test_a_spammed_plate_keeps_a_small_state_and_exact_journeys_and_charges(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {
        "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in ("sp-a", "sp-b")],
        "segments": [{"id": "sp-seg", "from_camera": "sp-a", "to_camera": "sp-b", "distance_m": 1000}],
        "zones": [{"id": "sp-zone", "cameras": ["sp-a"]}],
    })
    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()
    start = now_utc() - timedelta(minutes=5)
    send = producer(broker)
    for n in range(READS):  # five reads a millisecond... ten seconds in all
        read = PlateRead(read_id=f"sp-{n}", camera_id="sp-a", ts=start + timedelta(milliseconds=n * 2),
                         plate="SP4MME", confidence=0.9)
        send.send(topics.PLATE_READS, key=b"SP4MME", value=encode(read))
    at_b = PlateRead(read_id="sp-at-b", camera_id="sp-b", ts=start + timedelta(minutes=2), plate="SP4MME",
                     confidence=0.9)
    send.send(topics.PLATE_READS, key=b"SP4MME", value=encode(at_b))
    send.flush()

    journeys = [decode(Journey, m) for m in read_topic(broker, topics.JOURNEYS, until=lambda m: any(b"sp-at-b" in v for v in m))]
    assert [(j.from_read_id, j.to_read_id, j.travel_s) for j in journeys if not j.withdrawn] == [("sp-0", "sp-at-b", 120.0)]
    charges = [decode(ZoneCharge, m) for m in read_topic(broker, topics.ZONE_CHARGES, idle_s=3)]
    latest = max((c for c in charges if c.plate == "SP4MME"), key=lambda c: c.version)
    assert (latest.first_read_id, latest.read_count, str(latest.amount)) == ("sp-0", 1, "15.00")
    entries = {r.key: r.value for r in replay(broker, topics.PLATE_HISTORIES)}
    entry = entries[b"SP4MME"]
    assert len(entry) < 1024, f"{len(entry)} bytes"
    assert len(orjson.loads(entry)["sightings"]) == 2  # one run at sp-a, one read at sp-b
    assert worker.proc.poll() is None
