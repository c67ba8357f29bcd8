"""Warehouses filled with deterministic synthetic rows whose totals the tests know.

The rows are built here (not by the simulator) so every figure a panel returns can be checked
against a number computed independently in Python. Some rows are inserted twice, as an
at-least-once sink would, to prove the panels count them once. ``filled`` runs each panel test
twice: on the in-process chDB engine and over HTTP on ``gantry warehouse serve``, the way Grafana
and ``gantry report`` reach the embedded stack.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, Event, HotlistHit, encode
from gantry.site_events import GateDecision, ParkingSession
from warehouse.batch import Batch, Message
from warehouse.migrations import migrate
from warehouse.schema import LOW_CONFIDENCE
from warehouse.writer import write

GANTRY = Path(sys.executable).with_name("gantry")

START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)  # a Monday
END = START + timedelta(hours=3)
LOW = 0.5
HIGH = 0.95
STATS_STEP = timedelta(minutes=5)


@dataclass
class Expected:
    reads_by_camera: Counter[str] = field(default_factory=Counter)
    reads_by_minute: Counter[datetime] = field(default_factory=Counter)
    low_by_minute: Counter[datetime] = field(default_factory=Counter)
    reads_by_camera_minute: Counter[tuple[str, datetime]] = field(default_factory=Counter)
    low_by_camera_minute: Counter[tuple[str, datetime]] = field(default_factory=Counter)
    reads_by_hour: Counter[datetime] = field(default_factory=Counter)
    journeys_by_segment: Counter[str] = field(default_factory=Counter)
    current_median: dict[str, float] = field(default_factory=dict)
    typical_median: dict[str, float] = field(default_factory=dict)
    charges_by_status: Counter[str] = field(default_factory=Counter)
    first_camera: Counter[str] = field(default_factory=Counter)
    closed_day: date = START.date() - timedelta(days=1)
    closed_charges: int = 0
    closed_revenue: float = 0.0
    hits_by_list: Counter[str] = field(default_factory=Counter)
    latest_hit: datetime | None = None
    failures_by_minute: Counter[datetime] = field(default_factory=Counter)
    occupied_now: dict[str, int] = field(default_factory=dict)
    passages_by_hour: Counter[tuple[datetime, str]] = field(default_factory=Counter)
    stays_by_dwell: Counter[str] = field(default_factory=Counter)
    parking_revenue_by_day: dict[date, float] = field(default_factory=dict)
    denied_by_reason: Counter[str] = field(default_factory=Counter)
    stays: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # entry, exit


CITY: dict[str, Any] = {
    "cameras": [
        {"id": "c1", "name": "Bridge St", "lat": 51.50, "lon": -0.12, "direction": "in"},
        {"id": "c2", "name": "Bridge St out", "lat": 51.51, "lon": -0.11, "direction": "out"},
        {"id": "c3", "name": "Ring Rd N", "lat": 51.52, "lon": -0.10},
        {"id": "c4", "name": "Ring Rd S", "lat": 51.48, "lon": -0.13},
    ],
    "segments": [
        {"id": "s1", "from_camera": "c1", "to_camera": "c3", "distance_m": 2000},
        {"id": "s2", "from_camera": "c3", "to_camera": "c4", "distance_m": 4500},
    ],
    "zones": [{"id": "z1", "cameras": ["c1", "c2"], "tariff": {"timezone": "Europe/London"}}],
    "sites": [{
        "id": "depot",
        "gates": [{"camera": "c3", "direction": "entry", "car_park": "p1"},
                  {"camera": "c4", "direction": "exit", "car_park": "p1"}],
        "lists": [{"list": "police", "access": "deny"}],
        "car_parks": [{"id": "p1", "capacity": 10, "tariff": {"per_hour": "2.00", "daily_cap": "12.00"}}],
    }],
}
"""The city the rows belong to, as it would be written in ``gantry.yaml``."""


def city_config() -> GantryConfig:
    return GantryConfig(**CITY)


def _reads(expected: Expected) -> list[tuple]:
    rows = []
    for i, camera in enumerate(("c1", "c2", "c3", "c4"), start=1):
        for m in range(int((END - START).total_seconds() // 60)):
            minute = START + timedelta(minutes=m)
            for k in range(i + m % 5):
                confidence = LOW if k % 4 == 0 else HIGH
                ts = minute + timedelta(seconds=k)
                rows.append(
                    (
                        1,
                        f"r-{camera}-{m}-{k}",
                        camera,
                        ts,
                        f"AB{m % 97}C{k}",
                        confidence,
                        None,
                        None,
                        (0, 0, 10, 10),
                        None,
                        None,
                    )
                )
                expected.reads_by_camera[camera] += 1
                expected.reads_by_minute[minute] += 1
                expected.reads_by_hour[minute.replace(minute=0)] += 1
                expected.low_by_minute[minute] += confidence < LOW_CONFIDENCE
                expected.reads_by_camera_minute[camera, minute] += 1
                expected.low_by_camera_minute[camera, minute] += confidence < LOW_CONFIDENCE
    return rows


def _segment_stats(expected: Expected) -> list[tuple]:
    """s1 is congested in the last hour (150 s against a typical 100 s); s2 is as usual."""
    usual = {"s1": 100.0, "s2": 300.0}
    now_ = {"s1": 150.0, "s2": 300.0}
    distance = {"s1": 2000, "s2": 4500}
    rows = []

    def add(segment: str, start: datetime, median: float, count: int, outliers: int) -> None:
        speed = distance[segment] / median * 3.6
        rows.append(
            (
                1,
                f"st-{segment}-{start:%Y%m%d%H%M}",
                segment,
                start,
                start + STATS_STEP,
                count,
                outliers,
                median,
                median * 1.2,
                speed,
            )
        )

    for segment, typical in usual.items():
        t = START
        while t < END:
            current = t >= END - timedelta(hours=1)
            add(segment, t, now_[segment] if current else typical, 3, 1)
            expected.journeys_by_segment[segment] += 4
            t += STATS_STEP
        for weeks in range(1, 5):
            t = END - timedelta(hours=1, weeks=weeks)
            while t < END - timedelta(weeks=weeks):
                add(segment, t, typical, 2, 0)
                t += STATS_STEP
        expected.current_median[segment] = now_[segment]
        expected.typical_median[segment] = typical
    return rows


def _charges(expected: Expected) -> tuple[list[tuple], list[tuple]]:
    charges = []
    statuses = ["charged"] * 6 + ["discounted"] * 2 + ["exempt"] * 2
    for day in (expected.closed_day, START.date()):
        for n, status in enumerate(statuses):
            amount = {"charged": Decimal("15.00"), "discounted": Decimal("7.50"), "exempt": Decimal("0.00")}[
                status
            ]
            base = (1, f"ch-{day}-{n}", "z1", f"PL{n}", day, "car", status, amount, "GBP")
            first = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=7, minutes=n)
            # version 1 saw the car first at c2; version 2 found an earlier read at c1
            charges.append((*base, first + timedelta(minutes=30), "c2", f"r{n}b", 1, 1))
            final_camera = "c1" if n % 3 else "c2"
            charges.append((*base, first, final_camera, f"r{n}a", 2, 2))
            expected.charges_by_status[status] += 1
            expected.first_camera[final_camera] += 1
            if day == expected.closed_day:
                expected.closed_charges += 1
                expected.closed_revenue += float(amount)
    closed_at = datetime.combine(expected.closed_day + timedelta(days=1), datetime.min.time(), UTC)
    days = [
        (1, "z1", expected.closed_day, 3, Decimal("45.00"), "GBP", closed_at),  # an earlier, partial close
        (
            1,
            "z1",
            expected.closed_day,
            expected.closed_charges,
            Decimal(str(expected.closed_revenue)),
            "GBP",
            closed_at + timedelta(minutes=5),
        ),
    ]
    return charges, days


def _hits(expected: Expected) -> list[tuple]:
    rows = []
    for n in range(12):
        ts = START + timedelta(minutes=7 * n)
        listed = "police" if n % 3 else "stolen"
        rows.append(
            (
                1,
                f"hit-{n}",
                f"r-c1-{n}",
                "c1" if n % 2 else "c3",
                ts,
                f"HP{n}",
                f"HP{n}",
                listed,
                "",
                2,
                "exact" if n % 4 else "possible",
                0.9,
            )
        )
        expected.hits_by_list[listed] += 1
        expected.latest_hit = ts
    return rows


def _webhook_failures(expected: Expected) -> list[DeadLetter]:
    """Hits whose alert gave up after every retry, as the webhook job dead-letters them."""
    letters = []
    for n in range(9):
        ts = START + timedelta(minutes=13 * n, seconds=5)
        undelivered = HotlistHit(
            hit_id=f"hit-{n}", read_id=f"r-c1-{n}", camera_id="c1", ts=ts, plate=f"HP{n}",
            listed_plate=f"HP{n}", list="police", priority=2, match="exact", confidence=0.9,
        )  # fmt: skip
        letters.append(
            DeadLetter(
                source_topic=topics.HOTLIST_HITS,
                partition=0,
                offset=n,
                stage="hotlist-webhooks",
                reason="subscriber police: HTTP 503 after 5 attempts",
                payload=encode(undelivered).decode(),
                ts=ts + timedelta(seconds=20),
            )
        )
        expected.failures_by_minute[(ts + timedelta(seconds=20)).replace(second=0)] += 1
    return letters


def _parking(expected: Expected) -> tuple[list[GateDecision], list[ParkingSession]]:
    """Six stays at car park p1 (four closed, two still open), the gate decisions behind them,
    three refused attempts, and a stay withdrawn after it was sent."""
    decisions, sessions = [], []

    def decided(plate: str, camera: str, direction: str, ts: datetime, decision: str, reason: str) -> None:
        read_id = f"gate-{plate}-{direction}-{ts:%H%M}"
        decisions.append(GateDecision(
            decision_id=f"d-{read_id}", read_id=read_id, site_id="depot", camera_id=camera, direction=direction,
            car_park_id="p1", ts=ts, plate=plate, decision=decision, reason=reason))
        if decision == "allow":
            expected.passages_by_hour[ts.replace(minute=0, second=0), direction] += 1
        elif decision == "deny":
            expected.denied_by_reason[reason] += 1

    for k in range(6):
        plate, entry = f"PK{k}", START + timedelta(minutes=20 * k)
        exit_ = entry + timedelta(minutes=25 * (k + 1)) if k < 4 else None
        fee = Decimal(2 * -(-25 * (k + 1) // 60)) if exit_ else Decimal(0)  # per started hour
        decided(plate, "c3", "entry", entry, "allow", "unknown_allowed")
        opened = ParkingSession(session_id=f"stay-{k}", car_park_id="p1", plate=plate, status="open", first_ts=entry,
                                entry_ts=entry, entry_read_id=f"in-{k}", fee=Decimal(0), currency="GBP", version=1)
        sessions.append(opened)
        expected.stays.append((entry, exit_))
        if exit_ is None:
            continue
        decided(plate, "c4", "exit", exit_ - timedelta(minutes=2), "pay", "fee_due")  # the barrier stays shut
        decided(plate, "c4", "exit", exit_, "allow", "paid")
        sessions.append(opened.model_copy(update={
            "status": "closed", "exit_ts": exit_, "exit_read_id": f"out-{k}", "duration_s": (exit_ - entry).total_seconds(),
            "fee": fee, "version": 2}))
        expected.stays_by_dwell["15-60 min" if k < 2 else "1-3 h"] += 1
        day = exit_.date()
        expected.parking_revenue_by_day[day] = expected.parking_revenue_by_day.get(day, 0.0) + float(fee)
    wrong = ParkingSession(session_id="stay-w", car_park_id="p1", plate="PK9", status="entry_missed", first_ts=END,
                           exit_ts=END, exit_read_id="out-w", fee=Decimal("12.00"), currency="GBP", version=1)
    sessions += [wrong, wrong.model_copy(update={"withdrawn": True, "version": 2})]
    for n, reason in enumerate(("unknown_denied", "unknown_denied", "deny_list")):
        decided(f"NO{n}", "c3", "entry", START + timedelta(minutes=50 + n), "deny", reason)
    expected.occupied_now = {"p1": 2}
    return decisions, sessions


def _sink(client, topic: str, events: list[Event]) -> None:
    """Through the sink's own batch and writer: all of them, then a replay of the first three.

    The replay is cut into a batch of its own (as after a crash), so its insert token differs and
    its rows land twice; the table's replacing engine and the panel's ``FINAL`` must absorb them.
    """
    messages = [Message(topic, 0, offset, encode(event)) for offset, event in enumerate(events)]
    for delivery in (messages, messages[:3]):
        batch = Batch(max_rows=len(messages), max_seconds=60)
        batch.extend(delivery, now=0)
        written = write(client, batch.drain())
        assert (written.rows, written.refused) == (len(delivery), [])


COLUMNS = {
    "plate_reads": [
        "v",
        "read_id",
        "camera_id",
        "ts",
        "plate",
        "confidence",
        "region",
        "direction",
        "bbox",
        "frame_id",
        "image_ref",
    ],
    "segment_stats": [
        "v",
        "stats_id",
        "segment_id",
        "interval_start",
        "interval_end",
        "count",
        "outliers",
        "median_travel_s",
        "p85_travel_s",
        "mean_speed_kmh",
    ],
    "zone_charges": [
        "v",
        "charge_id",
        "zone_id",
        "plate",
        "charge_date",
        "vehicle_class",
        "status",
        "amount",
        "currency",
        "first_read_ts",
        "first_camera_id",
        "first_read_id",
        "read_count",
        "version",
    ],
    "zone_days": ["v", "zone_id", "charge_date", "charges", "total_amount", "currency", "closed_at"],
    "hotlist_hits": [
        "v",
        "hit_id",
        "read_id",
        "camera_id",
        "ts",
        "plate",
        "listed_plate",
        "list",
        "reason",
        "priority",
        "match",
        "confidence",
    ],
}


def fill(client, config: GantryConfig) -> Expected:
    """Migrate and load the synthetic rows; returns the figures the panels must show."""
    migrate(client, config.warehouse.retention_days)
    expected = Expected()
    reads = _reads(expected)
    stats = _segment_stats(expected)
    charges, days = _charges(expected)
    hits = _hits(expected)
    # at-least-once: a second delivery of some rows, in separate insert batches
    batches = [
        ("plate_reads", reads),
        ("plate_reads", reads[:50]),
        ("segment_stats", stats),
        ("segment_stats", stats[:10]),
        ("zone_charges", charges),
        ("zone_days", days),
        ("hotlist_hits", hits),
        ("hotlist_hits", hits[:3]),
    ]
    for table, rows in batches:
        client.insert(table, rows, column_names=COLUMNS[table])
    _sink(client, topics.WEBHOOK_DEAD_LETTERS, _webhook_failures(expected))
    decisions, sessions = _parking(expected)
    _sink(client, topics.GATE_DECISIONS, decisions)
    _sink(client, topics.PARKING_SESSIONS, sessions)
    return expected

