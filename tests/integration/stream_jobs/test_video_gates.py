"""Gate reads recognised from video, on the real broker: the video-gates job decides each read the
recogniser made at a gate camera (listed, unknown, deny list, and the exit's fee from the entry it
decided itself), leaves alone a read that came through the edge endpoint and any other camera's,
and the parking job opens a stay from the entry it allowed."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.erasures import BlockList
from gantry.events import HotlistEntry, PlateRead, decode, encode, now_utc
from gantry.kafka import create_missing, ensure_topics, producer
from gantry.site_events import GateDecision, ParkingSession
from stream_jobs.hotlist import store
from stream_jobs.parking import job as parking_job
from stream_jobs.parking.job import ParkingJob
from stream_jobs.runtime.compacted import ErasureFeed
from stream_jobs.video_gates import VideoGateJob

pytestmark = pytest.mark.integration
SITE = {
    "id": "video-site",
    "unknown_plates": "deny",
    "lists": [{"list": "staff", "access": "allow"}, {"list": "stolen", "access": "deny"}],
    "gates": [{"camera": "cam-v-in", "direction": "entry", "car_park": "vpark"},
              {"camera": "cam-v-out", "direction": "exit", "car_park": "vpark"}],
    "car_parks": [{"id": "vpark", "capacity": 10, "timezone": "Europe/London",
                   "tariff": {"currency": "GBP", "free_minutes": 0, "per_hour": "2.00", "daily_cap": "12.00"}}],
}
CAMERAS = [{"id": c, "lat": 51.5, "lon": 0.0} for c in ("cam-v-in", "cam-v-out", "cam-street")]


def read(read_id: str, camera: str, plate: str, ts, *, video: bool = True) -> PlateRead:
    return PlateRead(read_id=read_id, camera_id=camera, ts=ts, plate=plate, confidence=0.9,
                     frame_id=f"frame-{read_id}" if video else None)


async def consume(bootstrap: str, topic: str, model, until, timeout_s: float = 60, then_s: float = 0.0) -> list:
    """Every message of ``topic`` from the start, once ``until(got)`` (and ``then_s`` more) or the time is up."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=100)
    await consumer.start()
    got: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if until(got):
                deadline = min(deadline, time.monotonic() + then_s)
                then_s = timeout_s
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got += [decode(model, r.value) for r in records]
    finally:
        await consumer.stop()
    return got


def test_gate_reads_from_video_are_decided_once_and_become_stays():
    entry_ts = now_utc() - timedelta(minutes=100)
    exit_ts = entry_ts + timedelta(minutes=90)
    reads = [
        read("v-staff-in", "cam-v-in", "VG01ABC", entry_ts),
        read("v-unknown-in", "cam-v-in", "VG02UNK", entry_ts),
        read("v-stolen-in", "cam-v-in", "VG05STL", entry_ts),
        read("edge-in", "cam-v-in", "VG03EDG", entry_ts, video=False),  # decided by the endpoint, in its request
        read("v-street", "cam-street", "VG04CAM", entry_ts),  # not a gate
    ]
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        config = GantryConfig(broker={"bootstrap_servers": bootstrap, "partitions": 2}, cameras=CAMERAS, sites=[SITE])
        ensure_topics(config, bootstrap)
        create_missing(bootstrap, parking_job.internal_topics(config))
        store.publish(bootstrap, [HotlistEntry(plate="VG01ABC", list="staff", holder="u-1"),
                                  HotlistEntry(plate="VG05STL", list="stolen")])

        async def scenario() -> tuple[list[GateDecision], list[ParkingSession]]:
            erasures = ErasureFeed(bootstrap, BlockList(lambda: SecretStr("test-key")))
            await erasures.start()
            job, parking = VideoGateJob(bootstrap, config, erasures), ParkingJob(bootstrap, config)
            await job.start()
            await parking.start()
            sender = producer(bootstrap)
            for r in reads:
                sender.send(topics.PLATE_READS, key=r.plate.encode(), value=encode(r))
            sender.flush()
            ids = {"v-staff-in", "v-unknown-in", "v-stolen-in"}
            await consume(bootstrap, topics.GATE_DECISIONS, GateDecision, lambda got: ids <= {d.read_id for d in got})
            # The exit comes once the entry is decided: the job found the stay it had noted itself.
            exit_read = read("v-staff-out", "cam-v-out", "VG01ABC", exit_ts)
            sender.send(topics.PLATE_READS, key=exit_read.plate.encode(), value=encode(exit_read))
            sender.flush()
            sender.close()
            decisions = await consume(bootstrap, topics.GATE_DECISIONS, GateDecision,
                                      lambda got: "v-staff-out" in {d.read_id for d in got}, then_s=2.0)
            sessions = await consume(bootstrap, topics.PARKING_SESSIONS, ParkingSession, lambda got: bool(got))
            for service in (parking, job, erasures):
                await service.stop()
            return decisions, sessions

        decisions, sessions = asyncio.run(scenario())
    by_read = {d.read_id: d for d in decisions}
    assert len(decisions) == len(by_read) == 4  # no decision for the endpoint's read or the street camera
    assert (by_read["v-staff-in"].decision, by_read["v-staff-in"].reason, by_read["v-staff-in"].holder) == (
        "allow", "listed", "u-1")
    assert (by_read["v-unknown-in"].decision, by_read["v-unknown-in"].reason) == ("deny", "unknown_denied")
    assert (by_read["v-stolen-in"].decision, by_read["v-stolen-in"].reason) == ("deny", "deny_list")
    leaving = by_read["v-staff-out"]
    assert (leaving.decision, leaving.reason, leaving.amount) == ("pay", "fee_due", Decimal("4.00"))
    assert leaving.entry_ts == reads[0].ts  # two started hours since the entry this job let in
    assert {(d.site_id, d.car_park_id, d.direction) for d in decisions} == {
        ("video-site", "vpark", "entry"), ("video-site", "vpark", "exit")}
    assert [(s.plate, s.status, s.entry_read_id) for s in sessions] == [("VG01ABC", "open", "v-staff-in")]
