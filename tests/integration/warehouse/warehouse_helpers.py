"""Events with stable ids like the real producers make, and process helpers for the warehouse tests."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from gantry import topics
from gantry.events import DeadLetter, HotlistHit, Journey, PlateRead, ZoneCharge, ZoneDay, dead_letter, encode
from gantry.ids import stable_id
from gantry.privacy import pseudonymise
from warehouse.batch import Batch, Message
from warehouse.writer import write

REPO = Path(__file__).resolve().parents[3]
PYTHON_CLI = [sys.executable, "-c", "from warehouse.cli import app; app()"]


def cli_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for a CLI subprocess: configuration from env only, never a stray gantry.yaml."""
    env = os.environ | {"GANTRY_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)} | settings
    env.pop("GANTRY_CONFIG", None)
    return env


T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)


def load(client, topic: str, events) -> None:
    """Write ``events`` through the sink's own batch and insert path; every one must be accepted."""
    batch = Batch(100_000, 60)
    batch.extend([Message(topic, 0, offset, encode(event)) for offset, event in enumerate(events)], now=0.0)
    drained = batch.drain()
    assert drained.letters == []
    assert write(client, drained).refused == []


def reads(camera: str, n: int, plate: str = "AB12CDE") -> list[PlateRead]:
    return [
        PlateRead(read_id=stable_id(camera, i), camera_id=camera, ts=T0 + timedelta(seconds=i), plate=plate,
                  confidence=0.9)
        for i in range(n)
    ]  # fmt: skip


def hit(read: PlateRead) -> HotlistHit:
    return HotlistHit(hit_id=stable_id(read.read_id, "stolen"), read_id=read.read_id, camera_id=read.camera_id,
                      ts=read.ts, plate=read.plate, listed_plate=read.plate, list="stolen", priority=1,
                      match="exact", confidence=read.confidence)  # fmt: skip


def charge(zone: str, plate: str, day: date, version: int = 1, read_count: int = 1) -> ZoneCharge:
    return ZoneCharge(charge_id=stable_id(zone, plate, day), zone_id=zone, plate=plate, charge_date=day,
                      vehicle_class="car", status="charged", amount=Decimal("15.00"), currency="GBP",
                      first_read_ts=T0, first_camera_id="cam-1", first_read_id=stable_id(plate, "first"),
                      read_count=read_count, version=version)  # fmt: skip


def zone_day(zone: str, day: date, charges: int, total: Decimal) -> ZoneDay:
    return ZoneDay(zone_id=zone, charge_date=day, charges=charges, total_amount=total, currency="GBP",
                   closed_at=T0 + timedelta(days=1))  # fmt: skip


def journey(start: PlateRead, end: PlateRead, key: SecretStr) -> Journey:
    travel_s = (end.ts - start.ts).total_seconds()
    return Journey(journey_id=stable_id("journey", start.read_id, end.read_id), segment_id="seg-1",
                   plate_pseudonym=pseudonymise(start.plate, key), start_ts=start.ts, end_ts=end.ts,
                   travel_s=travel_s, speed_kmh=round(500 / travel_s * 3.6, 3), from_read_id=start.read_id,
                   to_read_id=end.read_id)  # fmt: skip


def webhook_failure(undelivered: HotlistHit) -> DeadLetter:
    """What the webhook job gives up with: the hit it could not deliver, and why."""
    return dead_letter(encode(undelivered), "subscriber police: HTTP 503 after 5 attempts", stage="hotlist-webhooks",
                       source_topic=topics.HOTLIST_HITS, partition=0, offset=7)  # fmt: skip
