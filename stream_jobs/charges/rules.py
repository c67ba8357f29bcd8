"""Congestion-zone tariffs: when a day is charged, and what one plate owes for it.

Everything is decided in the zone's local time (a London charge day starts at midnight in
London, summer or winter). A plate owes at most one charge per zone per charging day, however
many cameras read it; the charge remembers the first read inside charging hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gantry.config import WEEKDAYS, ChargingHours, PlateException, Tariff, Zone
from gantry.events import ChargeConcession, ClassSource, ZoneCharge, ZoneDay
from gantry.ids import stable_id
from stream_jobs.charges.registers import ChargeRegisters
from stream_jobs.passages import Passage

CENT = Decimal("0.01")
MIDNIGHT = time(0)


def local_day(ts: datetime, tariff: Tariff) -> date:
    return ts.astimezone(ZoneInfo(tariff.timezone)).date()


def hours_on(day: date, tariff: Tariff) -> list[ChargingHours]:
    """The charging hours of a local date: none on no-charge dates, holiday hours on holidays."""
    if any(r.start <= day <= r.end for r in tariff.no_charge):
        return []
    if day in tariff.holidays:
        return tariff.holiday_hours
    return tariff.hours.get(WEEKDAYS[day.weekday()], [])


def is_charging(ts: datetime, tariff: Tariff) -> bool:
    local = ts.astimezone(ZoneInfo(tariff.timezone))
    return _within(local.time(), hours_on(local.date(), tariff))


def _within(clock: time, hours: list[ChargingHours]) -> bool:
    """Whether a local wall-clock time falls in one of the day's charging hours (end 00:00: midnight)."""
    return any(h.start <= clock and (h.end == MIDNIGHT or clock < h.end) for h in hours)


def day_end(day: date, tariff: Tariff) -> datetime:
    """The UTC instant a local charging day ends (the next local midnight)."""
    return datetime.combine(day + timedelta(days=1), MIDNIGHT, ZoneInfo(tariff.timezone)).astimezone(UTC)


def _applies(rule: PlateException, plate: str, day: date) -> bool:
    return (
        rule.plate == plate
        and (rule.valid_from is None or rule.valid_from <= day)
        and (rule.valid_until is None or day <= rule.valid_until)
    )


class VehicleClass(NamedTuple):
    name: str
    source: ClassSource


def classify(tariff: Tariff, registered: str | None, reported: str | None) -> VehicleClass:
    """The class a charge is priced at, from the most trusted source whose class the tariff prices:
    the zone operator's register, then the camera's report (through ``camera_classes``), then
    ``default_class``. A class the tariff has no price for tells this zone nothing (a zone that
    charges every vehicle alike prices one class), so the next source is asked."""
    if registered in tariff.daily_charge:
        return VehicleClass(registered, "register")
    if reported is not None and (camera := tariff.camera_classes.get(reported, reported)) in tariff.daily_charge:
        return VehicleClass(camera, "camera")
    return VehicleClass(tariff.default_class, "default")


def price(plate: str, day: date, tariff: Tariff, vehicle_class: str | None = None,
          concessions: Sequence[ChargeConcession] = ()) -> tuple[str, str, Decimal]:
    """(vehicle class, status, amount) owed by a plate for one charging day; ``concessions`` are
    the registered ones that hold for the plate that day, applied with the tariff's own."""
    cls = vehicle_class if vehicle_class in tariff.daily_charge else tariff.default_class
    full = tariff.daily_charge[cls]
    if any(_applies(e, plate, day) for e in tariff.exemptions) or any(c.kind == "exemption" for c in concessions):
        return cls, "exempt", Decimal("0.00")
    discounts = [d.percent_off for d in tariff.discounts if _applies(d, plate, day)]
    discounts += [c.percent_off for c in concessions if c.kind == "discount"]
    if discounts:
        amount = full * (Decimal(100) - max(discounts)) / Decimal(100)
        return cls, "discounted", amount.quantize(CENT, ROUND_HALF_UP)
    return cls, "charged", full.quantize(CENT, ROUND_HALF_UP)


def charge_id(zone_id: str, plate: str, day: date) -> str:
    return stable_id("charge", zone_id, plate, day.isoformat())


class DayCharge(NamedTuple):
    """What a plate owes a zone for one local day, before it becomes a :class:`ZoneCharge` event:
    cheap to build and compare, so the (validated) event is built only when the charge changed."""

    day: date
    first: Passage  # the day's first passage in charging hours
    reads: int  # passages in charging hours that day
    vehicle_class: str
    status: str
    amount: Decimal
    class_source: ClassSource = "default"


NO_REGISTERS = ChargeRegisters()


def day_charges(plate: str, passages: Sequence[Passage], zone: Zone, only: date | None = None,
                registers: ChargeRegisters = NO_REGISTERS) -> dict[date, DayCharge]:
    """What the plate owes for every local day on which it passed a zone camera in charging hours
    (with ``only``, for that day alone: all a new read can change). The class a camera reported is
    that of the day's earliest passage (in charging hours) whose camera reported one."""
    cameras = set(zone.cameras)
    tz = ZoneInfo(zone.tariff.timezone)
    hours: dict[date, list[ChargingHours]] = {}
    by_day: dict[date, list[Passage]] = {}
    for p in passages:
        if p.camera_id not in cameras:
            continue
        local = p.first.ts.astimezone(tz)
        day = local.date()
        if only is not None and day != only:
            continue
        if day not in hours:
            hours[day] = hours_on(day, zone.tariff)
        if _within(local.time(), hours[day]):
            by_day.setdefault(day, []).append(p)
    return {day: _owed(plate, day, day_passages, zone, registers) for day, day_passages in by_day.items()}


def _owed(plate: str, day: date, day_passages: list[Passage], zone: Zone, registers: ChargeRegisters) -> DayCharge:
    day_passages.sort()
    reported = next((p.first.vehicle_class for p in day_passages if p.first.vehicle_class), None)
    cls = classify(zone.tariff, registers.vehicle_class(plate, day), reported)
    _, status, amount = price(plate, day, zone.tariff, cls.name, registers.concessions_on(zone.id, plate, day))
    return DayCharge(day, day_passages[0], len(day_passages), cls.name, status, amount, cls.source)


def zone_charge(plate: str, zone: Zone, owed: DayCharge, version: int = 1) -> ZoneCharge:
    """The event for a day's charge; the job numbers the versions it actually emits."""
    return ZoneCharge(
        charge_id=charge_id(zone.id, plate, owed.day),
        zone_id=zone.id,
        plate=plate,
        charge_date=owed.day,
        vehicle_class=owed.vehicle_class,
        vehicle_class_source=owed.class_source,
        status=owed.status,
        amount=owed.amount,
        currency=zone.tariff.currency,
        first_read_ts=owed.first.first.ts,
        first_camera_id=owed.first.camera_id,
        first_read_id=owed.first.first.read_id,
        read_count=owed.reads,
        version=version,
        image_ref=owed.first.first.image_ref or None,
    )


def day_summary(zone: Zone, day: date, charges: int, total: Decimal, closed_at: datetime) -> ZoneDay:
    return ZoneDay(
        zone_id=zone.id,
        charge_date=day,
        charges=charges,
        total_amount=total.quantize(CENT),
        currency=zone.tariff.currency,
        closed_at=closed_at,
    )
