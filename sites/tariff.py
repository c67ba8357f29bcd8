"""What a stay in a car park costs.

The fee depends on the stay's real length (UTC: a night across a clock change is charged for the
hours it lasted) and on the local calendar days it touches (the daily cap is per local day, so a
stay from 23:00 to 01:00 may cost up to two caps, as the sign at the entrance says). Stays up to
``free_minutes`` are free; longer ones pay for the whole stay, per started hour or by the first
band that holds them, bands repeating past the last one.

A car that paid has ``exit_grace_minutes`` to reach the barrier: leaving within them, its stay
is charged until the payment (:func:`charged_until`), so the walk back to the car costs nothing;
leaving later, the stay is charged until the exit and what was paid is set against it, so only
what the extra time adds to the stay's fee is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from gantry.site_events import ParkingPayment
from gantry.sites import CarPark, ParkingTariff

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def local_days_touched(entry_ts: datetime, exit_ts: datetime, timezone: str) -> int:
    """How many local calendar days the stay has a moment in (at least one)."""
    zone = ZoneInfo(timezone)
    last = exit_ts - timedelta(microseconds=1) if exit_ts > entry_ts else exit_ts
    return (last.astimezone(zone).date() - entry_ts.astimezone(zone).date()).days + 1


def _price(minutes: float, tariff: ParkingTariff) -> Decimal:
    if tariff.per_hour is not None:
        started_hours = -int(-minutes // 60) if minutes > 0 else 0
        return tariff.per_hour * started_hours
    period = tariff.bands[-1].up_to_minutes
    repeats, rest = divmod(minutes, period)
    price = tariff.bands[-1].price * int(repeats)
    if rest > 0:
        price += next(b.price for b in tariff.bands if rest <= b.up_to_minutes)
    return price


def charged_until(exit_ts: datetime, paid_at: datetime | None, grace_minutes: int) -> datetime:
    """Where the tariff stops counting a stay: at the payment when the car left within the grace
    minutes after it (or before it, by a clock a little off), else at the exit."""
    if paid_at is not None and exit_ts <= paid_at + timedelta(minutes=grace_minutes):
        return min(exit_ts, paid_at)
    return exit_ts


def stay_fee(entry_ts: datetime, exit_ts: datetime, park: CarPark) -> Decimal:
    """The fee of a stay whose entry and exit were both read."""
    tariff = park.tariff
    minutes = max(0.0, (exit_ts - entry_ts).total_seconds() / 60)
    if minutes <= tariff.free_minutes:
        return ZERO
    fee = _price(minutes, tariff)
    if tariff.daily_cap is not None:
        fee = min(fee, tariff.daily_cap * local_days_touched(entry_ts, exit_ts, park.timezone))
    return fee.quantize(CENT, ROUND_HALF_UP)


def missed_exit_fee(park: CarPark) -> Decimal:
    """A stay whose exit was never read: the plate was seen entering again."""
    return park.tariff.lost_exit.quantize(CENT, ROUND_HALF_UP)


def missed_entry_fee(park: CarPark) -> Decimal:
    """An exit with no entry before it: the length of the stay is unknown."""
    return park.tariff.lost_entry.quantize(CENT, ROUND_HALF_UP)


def payment_of_stay(latest: ParkingPayment | None, entry_ts: datetime | None, at: datetime,
                    grace_minutes: int) -> ParkingPayment | None:
    """The plate's latest payment if it is for the stay that began at ``entry_ts``: one with that
    entry; for a stay whose entry was missed (no entry tells such stays apart), one made within the
    grace minutes before ``at``, lest an old lost-entry payment open the exit for a later stay."""
    if latest is None or latest.stay_entry_ts != entry_ts:
        return None
    if entry_ts is None and at > latest.paid_at + timedelta(minutes=grace_minutes):
        return None
    return latest


def paid_for_stay(payments: list[ParkingPayment], entry_ts: datetime | None, exit_ts: datetime | None,
                  grace_minutes: int) -> Decimal:
    """The money taken for a stay, from its plate's payments at the car park (the warehouse keeps
    every one): those naming the stay's entry; for a stay whose entry was missed, those made within
    the grace minutes before its exit, the only ones its exit opened for (:func:`payment_of_stay`)."""
    grace = timedelta(minutes=grace_minutes)

    def for_stay(payment: ParkingPayment) -> bool:
        if payment.stay_entry_ts != entry_ts:
            return False
        return entry_ts is not None or (exit_ts is not None and exit_ts - grace <= payment.paid_at <= exit_ts)

    return sum((p.amount for p in payments if for_stay(p)), ZERO)
