"""The simulator's exact answers against two real workers, one killed and restarted mid-stream."""

import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from jobs_helpers import Worker, read_topic, write_config

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig, StreamJobsConfig
from gantry.events import HotlistHit, Journey, PlateRead, SegmentStats, ZoneCharge, ZoneDay, decode, encode
from gantry.kafka import ensure_topics, producer
from stream_jobs.hotlist import store
from stream_jobs.journeys.rules import outlier_flags
from stream_jobs.simulator import Noise, simulate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker():
    """A broker of its own: the simulated days lie in the past, and reads timed now that other
    tests send to a shared broker move the jobs' watermarks past them, making them late."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running.bootstrap_servers


def test_two_workers_with_noise_and_a_crash_give_the_exact_answers(broker, tmp_path, workers):
    sim = simulate(cameras=8, vehicles=400, hours=3, seed=7,
                   noise=Noise(duplicates=0.05, extra_reads=0.1, early_second_looks=0.5, disorder_s=120,
                               misreads=0.03, late=3))
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
    def sim_hits(messages: list[bytes]) -> set[tuple]:
        hits = (decode(HotlistHit, m) for m in messages)
        return {(h.read_id, h.listed_plate, h.list, h.match) for h in hits if h.read_id in sim_read_ids}

    hits = read_topic(broker, topics.HOTLIST_HITS, until=lambda m: len(sim_hits(m)) >= len(expected.hits))
    assert sim_hits(hits) == expected.hits

    def standing(messages: list[bytes]) -> set[tuple]:
        """The journeys whose latest message (a journey may come again with its outlier flag, or
        withdrawn when a second look arrived before the first) does not withdraw them."""
        latest = {j.journey_id: j for j in (decode(Journey, m) for m in messages) if j.from_read_id in sim_read_ids}
        return {(j.segment_id, j.from_read_id, j.to_read_id, j.travel_s) for j in latest.values() if not j.withdrawn}

    journeys = read_topic(broker, topics.JOURNEYS, until=lambda m: standing(m) == expected.journeys)
    assert standing(journeys) == expected.journeys
    assert any(decode(Journey, m).withdrawn for m in journeys)  # the out-of-order case arose

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


def test_overnight_run_closes_the_charging_day_and_fills_segment_stats(broker, tmp_path, workers):
    evening = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday afternoon to Tuesday morning
    sim = simulate(cameras=6, vehicles=120, hours=20, seed=11, start=evening,
                   noise=Noise(duplicates=0.05, extra_reads=0.2, early_second_looks=1.0))
    config = write_config(tmp_path / "gantry.yaml", broker, sim.city | {"stream_jobs": {"allowed_lateness_s": 600}})
    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()
    send = producer(broker)
    for read in sim.reads:
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    send.flush()

    monday = [c for (_, _, day), c in sim.expected.charges.items() if day == "2026-11-30"]
    tuesday = [c for (_, _, day), c in sim.expected.charges.items() if day == "2026-12-01"]
    assert monday and tuesday
    def closed_days(messages: list[bytes]) -> list[tuple]:
        days = [decode(ZoneDay, m) for m in messages]
        return [(d.charge_date.isoformat(), d.charges, d.total_amount) for d in days
                if d.charge_date.isoformat() in ("2026-11-30", "2026-12-01")]

    # Monday closes once every partition's watermark is past its end (a slow machine takes a while).
    monday_closed = lambda m: any(day == "2026-11-30" for day, _, _ in closed_days(m))  # noqa: E731
    zone_days = read_topic(broker, topics.ZONE_DAYS, until=monday_closed, timeout_s=120)
    assert closed_days(zone_days) == [
        ("2026-11-30", len(monday), Decimal("15.00") * len(monday))
    ]  # Tuesday is still open: no read yet beyond its end plus the allowed lateness

    journeys_per_interval = Counter(
        (segment, _interval(sim, to_read)) for segment, _, to_read, _ in sim.expected.journeys
    )
    latest: dict[str, SegmentStats] = {}
    for stats in map(lambda m: decode(SegmentStats, m), read_topic(broker, topics.SEGMENT_STATS, idle_s=5)):
        if stats.interval_start >= evening:
            latest[stats.stats_id] = stats
    assert {(s.segment_id, s.interval_start): s.count + s.outliers for s in latest.values()} == journeys_per_interval

    # Each journey's latest message carries the outlier flag of the rule over its interval's journeys
    # (those withdrawn left out), and the statistics count exactly the flagged ones as outliers.
    final: dict[str, Journey] = {}
    for journey in map(lambda m: decode(Journey, m), read_topic(broker, topics.JOURNEYS, idle_s=3)):
        if journey.end_ts >= evening:
            final[journey.journey_id] = journey
    assert any(j.withdrawn for j in final.values())
    by_interval: dict[tuple, list[Journey]] = {}
    for j in (j for j in final.values() if not j.withdrawn):
        by_interval.setdefault((j.segment_id, datetime.fromtimestamp(j.end_ts.timestamp() // 300 * 300, UTC)), []).append(j)
    for members in by_interval.values():
        assert [j.outlier for j in members] == outlier_flags([j.travel_s for j in members], k=StreamJobsConfig().outlier_mad_k)
    flagged = Counter(key for key, members in by_interval.items() for j in members if j.outlier)
    assert sum(flagged.values()) > 0
    assert {(s.segment_id, s.interval_start): s.outliers for s in latest.values() if s.outliers} == dict(flagged)

    # Still only Monday, now that the reads of statistics and journeys above have given a wrong
    # close of Tuesday the seconds of quiet that the first read no longer waits for.
    assert closed_days(read_topic(broker, topics.ZONE_DAYS)) == closed_days(zone_days)

    metrics = httpx.get(f"http://127.0.0.1:{worker.port}/metrics").text
    assert 'gantry_consumer_lag{partition="0",stage="gantry-jobs-track",topic="plate_reads"} 0.0' in metrics
    for group in ("gantry-jobs-screen", "gantry-jobs-track", "gantry-jobs-segment-stats"):
        assert f'gantry_latency_seconds_count{{stage="{group}"}}' in metrics


def _interval(sim, read_id: str) -> datetime:
    ts = next(r.ts for r in sim.reads if r.read_id == read_id)
    return datetime.fromtimestamp(ts.timestamp() // 300 * 300, UTC)
