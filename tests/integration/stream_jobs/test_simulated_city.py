"""The simulator's exact answers against two real workers, one killed and restarted mid-stream."""

import time

import pytest

from gantry import topics
from gantry.events import HotlistHit, Journey, PlateRead, ZoneCharge, decode, encode
from gantry.kafka import producer
from stream_jobs.hotlist import store
from stream_jobs.simulator import Noise, simulate

from conftest import Worker, read_topic, write_config

pytestmark = pytest.mark.integration


def test_two_workers_with_noise_and_a_crash_give_the_exact_answers(broker, tmp_path, workers):
    sim = simulate(cameras=8, vehicles=400, hours=3, seed=7,
                   noise=Noise(duplicates=0.05, extra_reads=0.1, disorder_s=120, misreads=0.03, late=3))
    config = write_config(tmp_path / "gantry.yaml", broker, sim.city | {"stream_jobs": {"allowed_lateness_s": 600}})
    store.publish(broker, sim.hotlist)
    for index in (0, 1):
        workers.append(Worker(config, index, tmp_path))
    for w in workers:
        w.wait_ready()

    send = producer(broker)
    half = len(sim.reads) // 2
    for read in sim.reads[:half]:
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    send.flush()
    time.sleep(1)
    workers[1].kill()  # mid-stream, without a goodbye: its partitions move and its state is recovered
    for read in sim.reads[half:]:
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    send.flush()
    workers.append(Worker(config, 1, tmp_path))
    workers[-1].wait_ready()

    expected = sim.expected
    sim_read_ids = {r.read_id for r in sim.reads}
    hits = read_topic(broker, topics.HOTLIST_HITS, until=lambda m: _distinct(m, HotlistHit, "hit_id") >= len(expected.hits))
    got_hits = {(h.read_id, h.listed_plate, h.list, h.match) for h in map(lambda m: decode(HotlistHit, m), hits)}
    assert {h for h in got_hits if h[0] in sim_read_ids} == expected.hits

    journeys = read_topic(broker, topics.JOURNEYS, until=lambda m: _distinct(m, Journey, "journey_id") >= len(expected.journeys))
    got_journeys = {(j.segment_id, j.from_read_id, j.to_read_id, j.travel_s) for j in (decode(Journey, m) for m in journeys)}
    assert got_journeys == expected.journeys

    charges = read_topic(broker, topics.ZONE_CHARGES, idle_s=5)
    latest: dict[str, ZoneCharge] = {}
    for charge in (decode(ZoneCharge, m) for m in charges):
        if charge.charge_id not in latest or latest[charge.charge_id].version < charge.version:
            latest[charge.charge_id] = charge
    got_charges = {
        (c.zone_id, c.plate, c.charge_date.isoformat()): (c.first_read_id, c.read_count, str(c.amount))
        for c in latest.values()
    }
    assert got_charges == expected.charges

    late = {decode(PlateRead, m).read_id for m in read_topic(broker, topics.LATE_READS, idle_s=2)}
    assert late == expected.late_reads


def _distinct(messages: list[bytes], model, field: str) -> int:
    return len({getattr(decode(model, m), field) for m in messages})
