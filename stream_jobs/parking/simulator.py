"""A simulated car park with the exact stays and fees its gate decisions must give.

Vehicles make one to three stays each over three days, some on a free-parking permit; the
simulator writes the gate decisions the edge would have sent for them (an exit that owes a fee
is first told to pay, and let out once paid), with the faults of real
gates on request (an entry or an exit never read, a decision delivered twice, a camera's second
look, delivery out of order) and, *independently of the pairing and tariff code*, the stays the
parking job must produce and their fees, so a test comparing the two can fail.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from gantry.ids import stable_id
from gantry.site_events import GateDecision

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
PARK_ID = "sim-park"
ENTRY_CAMERA, EXIT_CAMERA = "sim-gate-in", "sim-gate-out"
FREE_MINUTES, PER_HOUR, DAILY_CAP = 15, Decimal("1.50"), Decimal("9.00")
LOST_EXIT, LOST_ENTRY = Decimal("20.00"), Decimal("25.00")
MAX_STAY_HOURS = 24
STAY_MINUTES = (5, 14, 15, 16, 59, 60, 61, 150, 600, 1500, 1700)  # around the free minutes, hours and the cap


def site() -> dict:
    """The configuration of the simulated site: one car park, a permit list that parks free."""
    return {
        "id": "sim-site",
        "gates": [{"camera": ENTRY_CAMERA, "direction": "entry", "car_park": PARK_ID},
                  {"camera": EXIT_CAMERA, "direction": "exit", "car_park": PARK_ID}],
        "lists": [{"list": "permit", "access": "allow", "free_parking": True}],
        "unknown_plates": "allow",
        "car_parks": [{"id": PARK_ID, "capacity": 500, "timezone": "Europe/London", "max_stay_hours": MAX_STAY_HOURS,
                       "tariff": {"currency": "GBP", "free_minutes": FREE_MINUTES, "per_hour": str(PER_HOUR),
                                  "daily_cap": str(DAILY_CAP), "missed_exit_fee": str(LOST_EXIT),
                                  "missed_entry_fee": str(LOST_ENTRY)}}],
    }


@dataclass(frozen=True)
class GateFaults:
    missed_entries: float = 0.0  # share of stays whose entry was not read
    missed_exits: float = 0.0  # share of stays whose exit was not read
    duplicates: float = 0.0  # share of decisions delivered twice
    second_looks: float = 0.0  # share of passages read again 1-3 s later (another read)
    disorder_s: float = 0.0  # delivery-order jitter in event-time seconds


@dataclass(frozen=True)
class ExpectedStay:
    plate: str
    status: str
    entry_read_id: str | None
    exit_read_id: str | None
    fee: str


@dataclass
class ParkingSimulation:
    decisions: list[GateDecision]
    expected: set[ExpectedStay]
    overstays: set[str]  # entry read ids of the closed stays longer than MAX_STAY_HOURS


def _fee(entry: datetime, exit_: datetime) -> Decimal:
    minutes = (exit_ - entry).total_seconds() / 60
    if minutes <= FREE_MINUTES:
        return Decimal("0.00")
    first_day = entry.astimezone(LONDON).date()
    last_day = (exit_ - timedelta(microseconds=1)).astimezone(LONDON).date()
    days = (last_day - first_day).days + 1
    return min(PER_HOUR * math.ceil(minutes / 60), DAILY_CAP * days).quantize(Decimal("0.01"))


def simulate(vehicles: int, faults: GateFaults = GateFaults(), seed: int = 16) -> ParkingSimulation:
    rng = random.Random(seed)
    passes: list[tuple[datetime, GateDecision]] = []
    expected: set[ExpectedStay] = set()
    overstays: set[str] = set()

    def decision(plate: str, direction: str, ts: datetime, read_id: str, permit: bool, *,
                 asked_to_pay: bool = False) -> GateDecision:
        """The edge's decision: entries allowed, exits allowed once paid (``asked_to_pay``: the
        exit's first answer, before paying, which lets no car through)."""
        exit_ = direction == "exit"
        return GateDecision(
            decision_id=stable_id("gate", read_id), read_id=read_id, site_id="sim-site",
            camera_id=EXIT_CAMERA if exit_ else ENTRY_CAMERA, direction=direction, car_park_id=PARK_ID, ts=ts,
            plate=plate, decision="pay" if asked_to_pay else "allow",
            reason=("fee_due" if asked_to_pay else "paid") if exit_ else ("listed" if permit else "unknown_allowed"),
            list="permit" if permit else None,
        )

    for n in range(vehicles):
        plate = f"PK{n:04d}"
        permit = rng.random() < 0.15
        free = "0.00" if permit else None  # a permit parks free, whatever happened at the gates
        ts = START + timedelta(minutes=rng.randrange(0, 24 * 60))
        pending: tuple[str, datetime] | None = None  # an entry read whose exit was not (yet) read
        for k in range(rng.randint(1, 3)):
            entry_ts = ts
            exit_ts = entry_ts + timedelta(minutes=rng.choice(STAY_MINUTES), seconds=rng.randrange(0, 60))
            entry_id, exit_id = f"sim-{plate}-{k}-in", f"sim-{plate}-{k}-out"
            entry_seen = rng.random() >= faults.missed_entries
            exit_seen = rng.random() >= faults.missed_exits
            fee = Decimal("0.00") if permit else _fee(entry_ts, exit_ts)
            if entry_seen:
                passes.append((entry_ts, decision(plate, "entry", entry_ts, entry_id, permit)))
            if exit_seen:
                if fee > 0:  # told to pay first, at the barrier: the car waits, then is let out
                    asked = exit_ts - timedelta(seconds=rng.randrange(40, 300))
                    passes.append((asked, decision(plate, "exit", asked, exit_id + "-asked", permit, asked_to_pay=True)))
                passes.append((exit_ts, decision(plate, "exit", exit_ts, exit_id, permit)))
            # What the passages that were read pair into:
            if pending is not None and entry_seen:
                expected.add(ExpectedStay(plate, "exit_missed", pending[0], None, free or str(LOST_EXIT)))
                pending = None
            if pending is not None:  # this stay's entry missed too: its exit ends the earlier entry's stay
                if exit_seen:
                    expected.add(ExpectedStay(plate, "closed", pending[0], exit_id, free or str(_fee(pending[1], exit_ts))))
                    overstays.update([pending[0]] if exit_ts - pending[1] > timedelta(hours=MAX_STAY_HOURS) else [])
                    pending = None
            elif entry_seen and exit_seen:
                expected.add(ExpectedStay(plate, "closed", entry_id, exit_id, str(fee)))
                overstays.update([entry_id] if exit_ts - entry_ts > timedelta(hours=MAX_STAY_HOURS) else [])
            elif entry_seen:
                pending = (entry_id, entry_ts)
            elif exit_seen:
                expected.add(ExpectedStay(plate, "entry_missed", None, exit_id, free or str(LOST_ENTRY)))
            ts = exit_ts + timedelta(hours=rng.randint(1, 12))
        if pending is not None:
            expected.add(ExpectedStay(plate, "open", pending[0], None, "0.00"))

    delivered: list[tuple[float, GateDecision]] = []
    for ts, made in passes:
        delivered.append((ts.timestamp() + rng.uniform(0, faults.disorder_s), made))
        if rng.random() < faults.second_looks:
            again = ts + timedelta(seconds=rng.uniform(1, 3))
            look = made.model_copy(update={"read_id": made.read_id + "-look2", "ts": again,
                                           "decision_id": stable_id("gate", made.read_id + "-look2")})
            delivered.append((again.timestamp() + rng.uniform(0, faults.disorder_s), look))
        if rng.random() < faults.duplicates:
            delivered.append((ts.timestamp() + rng.uniform(0, faults.disorder_s), made))
    delivered.sort(key=lambda pair: pair[0])
    return ParkingSimulation([d for _, d in delivered], expected, overstays)
