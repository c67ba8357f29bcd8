from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gantry.sites import CarPark
from sites.tariff import local_days_touched, missed_entry_fee, missed_exit_fee, stay_fee

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def park(timezone: str = "Europe/London", **tariff) -> CarPark:
    return CarPark(id="p", capacity=5, timezone=timezone, tariff={"currency": "GBP", **tariff})


HOURLY = park(free_minutes=20, per_hour="2.00", daily_cap="12.00")
BANDED = park(bands=[{"up_to_minutes": 60, "price": "1.50"}, {"up_to_minutes": 180, "price": "4.00"},
                     {"up_to_minutes": 1440, "price": "10.00"}], missed_exit_fee="25", missed_entry_fee="30")


@pytest.mark.parametrize(("minutes", "fee"), [
    (0, "0.00"), (20, "0.00"),  # free minutes, inclusive
    (20.5, "2.00"), (60, "2.00"),  # past the free minutes, the whole stay is paid, per started hour
    (61, "4.00"), (179, "6.00"), (300, "10.00"),
    (400, "12.00"),  # 7 started hours = 14.00, capped at one day's 12.00
])
def test_per_hour_with_free_minutes_and_cap(minutes, fee):
    assert stay_fee(T0, T0 + timedelta(minutes=minutes), HOURLY) == Decimal(fee)


@pytest.mark.parametrize(("minutes", "fee"), [
    (1, "1.50"), (60, "1.50"), (61, "4.00"), (180, "4.00"), (181, "10.00"), (1440, "10.00"),
    (1441, "11.50"),  # a day, then the bands again from the first
    (2 * 1440 + 120, "24.00"),
])
def test_bands_repeat_past_the_last(minutes, fee):
    assert stay_fee(T0, T0 + timedelta(minutes=minutes), BANDED) == Decimal(fee)


def test_the_daily_cap_counts_local_calendar_days():
    # 23:30 to 01:30 London: two hours, but two local days touched: cap 24.00, fee 4.00.
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert local_days_touched(late, late + timedelta(hours=2), "Europe/London") == 2
    assert stay_fee(late, late + timedelta(hours=2), HOURLY) == Decimal("4.00")
    # 10:00 Monday to 10:00 Wednesday: 48 started hours (96.00) capped at three days (36.00).
    assert stay_fee(T0, T0 + timedelta(days=2), HOURLY) == Decimal("36.00")
    # an exit at local midnight exactly does not touch the next day
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    assert local_days_touched(midnight - timedelta(hours=10), midnight, "Europe/London") == 1


def test_the_time_zone_is_the_car_parks():
    # 20:00 to 23:00 UTC is one day in London (cap 10.00 < 15.00), but 22:00 to 01:00 in Helsinki
    # (UTC+2): two days, the cap doubles.
    start = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    london, helsinki = (park(timezone=z, per_hour="5.00", daily_cap="10.00") for z in ("Europe/London", "Europe/Helsinki"))
    assert stay_fee(start, start + timedelta(hours=3), london) == Decimal("10.00")
    assert stay_fee(start, start + timedelta(hours=3), helsinki) == Decimal("15.00")


def test_a_night_across_the_clock_change_is_charged_for_the_hours_it_lasted():
    # London, 2026-10-25: clocks go back at 02:00 BST; 00:00 BST (23:00 UTC) to 04:00 GMT is 5 hours.
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    end = datetime(2026, 10, 25, 4, 0, tzinfo=UTC)
    assert stay_fee(start, end, park(per_hour="1.00", daily_cap="50")) == Decimal("5.00")


def test_lost_exit_and_lost_entry_rules():
    assert missed_exit_fee(HOURLY) == Decimal("12.00") == missed_entry_fee(HOURLY)  # the daily cap
    assert missed_exit_fee(BANDED) == Decimal("25.00") and missed_entry_fee(BANDED) == Decimal("30.00")


def test_an_exit_read_before_its_entry_costs_nothing_rather_than_a_negative_fee():
    assert stay_fee(T0, T0 - timedelta(minutes=5), HOURLY) == Decimal("0.00")
