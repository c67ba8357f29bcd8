"""The parking job on the real broker: the simulated car park's gate decisions in, exactly the
expected stays and fees out, through a restart of the job half-way (its state from the changelog)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.events import decode, encode
from gantry.kafka import create_missing, ensure_topics, producer, replay
from gantry.site_events import ParkingPayment, ParkingSession
from gantry.sites import Site
from sites.payments import record_payment
from stream_jobs.parking import job as parking_job
from stream_jobs.parking.job import ParkingJob
from stream_jobs.parking.simulator import ExpectedStay, GateFaults, simulate, site

pytestmark = pytest.mark.integration
FAULTS = GateFaults(missed_entries=0.05, missed_exits=0.05, duplicates=0.1, second_looks=0.2, disorder_s=120)


def send(bootstrap: str, decisions) -> None:
    sender = producer(bootstrap)
    for decision in decisions:
        sender.send(topics.GATE_DECISIONS, key=decision.plate.encode(), value=encode(decision))
    sender.flush()
    sender.close()


async def sessions_until(bootstrap: str, done, timeout_s: float = 60) -> dict[str, ParkingSession]:
    """The latest version of every session on the topic, once ``done(latest)`` or the time is up."""
    consumer = AIOKafkaConsumer(topics.PARKING_SESSIONS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    latest: dict[str, ParkingSession] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(latest):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    session = decode(ParkingSession, record.value)
                    assert record.key == f"{session.car_park_id}:{session.plate}".encode()
                    before = latest.get(session.session_id)
                    if before is None or session.version >= before.version:
                        latest[session.session_id] = session
    finally:
        await consumer.stop()
    return latest


def outcome(latest: dict[str, ParkingSession]) -> set[ExpectedStay]:
    return {ExpectedStay(s.plate, s.status, s.entry_read_id, s.exit_read_id, str(s.fee))
            for s in latest.values() if not s.withdrawn}


def test_the_parking_job_pairs_the_simulated_car_park_exactly_through_a_restart():
    simulation = simulate(150, FAULTS)
    half = len(simulation.decisions) // 2
    with EmbeddedBroker() as broker:
        config = GantryConfig(broker={"bootstrap_servers": broker.bootstrap_servers, "partitions": 2},
                              stream_jobs={"allowed_lateness_s": 300, "dedup_window_s": 10}, sites=[site()])
        ensure_topics(config, broker.bootstrap_servers)
        create_missing(broker.bootstrap_servers, parking_job.internal_topics(config))

        async def scenario() -> dict[str, ParkingSession]:
            first = ParkingJob(broker.bootstrap_servers, config)
            await first.start()
            send(broker.bootstrap_servers, simulation.decisions[:half])
            # Every decision of the first half handled before the restart: its plates' stays are out.
            first_plates = {d.plate for d in simulation.decisions[:half]}
            await sessions_until(broker.bootstrap_servers, lambda got: first_plates <= {s.plate for s in got.values()})
            await first.stop()
            second = ParkingJob(broker.bootstrap_servers, config)
            await second.start()
            send(broker.bootstrap_servers, simulation.decisions[half:])
            try:
                return await sessions_until(broker.bootstrap_servers, lambda got: outcome(got) == simulation.expected)
            finally:
                await second.stop()

        latest = asyncio.run(scenario())
        assert outcome(latest) == simulation.expected
        assert {s.entry_read_id for s in latest.values() if s.overstay and s.status == "closed"} == simulation.overstays

        # `gantry parking pay`: the payment is for the plate's open stay, at what it costs by then.
        stay = next(s for s in latest.values() if s.status == "open" and not s.withdrawn)
        park = Site.model_validate(site()).car_park(stay.car_park_id)
        paid = record_payment(broker.bootstrap_servers, park, stay.plate, stay.entry_ts + timedelta(hours=3))
        assert (paid.stay_entry_ts, paid.amount, paid.currency) == (stay.entry_ts, Decimal("4.50"), "GBP")  # 3 x 1.50
        (record,) = [r for r in replay(broker.bootstrap_servers, topics.PARKING_PAYMENTS)]
        assert decode(ParkingPayment, record.value) == paid and record.key == paid.key.encode()
