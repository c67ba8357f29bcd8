"""Paying and leaving: within the grace minutes the walk back to the car is not charged; later,
only what the extra time adds to the stay's fee is due, at the barrier, at the pay station and in
the stay the parking job sends."""

from datetime import timedelta
from decimal import Decimal

import pytest
from site_examples import MONDAY

from gantry.sites import CarPark
from sites.access import fee_due
from sites.pairing import Passage, pair
from sites.payments import next_payment
from sites.presence import Stay
from sites.tariff import charged_until, paid_for_stay, payment_of_stay
from stream_jobs.parking.stays import PlateStays

PARK = CarPark(id="p1", capacity=10, timezone="UTC",
               tariff={"free_minutes": 20, "per_hour": "2.00", "daily_cap": "12.00", "exit_grace_minutes": 15})
ENTERED = MONDAY + timedelta(hours=9)
PAID_AT = ENTERED + timedelta(minutes=55)  # 55 minutes: one hour, 2.00


def minutes(n: float):
    return ENTERED + timedelta(minutes=n)


@pytest.mark.parametrize(("exit_after", "until_after"), [
    (55, 55), (60, 55), (70, 55),  # within the 15 grace minutes of paying: until the payment
    (71, 71), (130, 130),  # past them: until the exit
    (50, 50),  # an exit read a little before the pay station's clock: until the exit
])
def test_the_stay_is_charged_until_the_payment_within_the_grace_minutes(exit_after, until_after):
    assert charged_until(minutes(exit_after), PAID_AT, 15) == minutes(until_after)
    assert charged_until(minutes(exit_after), None, 15) == minutes(exit_after)


def test_leaving_within_the_grace_minutes_owes_nothing_though_an_hour_began_since_paying():
    stay = Stay(ENTERED, "r1")
    paid = next_payment(PARK, "AB1", ENTERED, "r1", None, PAID_AT)
    assert (paid.amount, paid.paid_total) == (Decimal("2.00"), Decimal("2.00"))
    assert fee_due(PARK, stay, paid, minutes(68)) == Decimal("0.00")  # 68 minutes in: the second hour
    assert fee_due(PARK, stay, None, minutes(68)) == Decimal("4.00")


def test_after_the_grace_minutes_only_the_extra_time_is_due_and_paid():
    stay = Stay(ENTERED, "r1")
    first = next_payment(PARK, "AB1", ENTERED, "r1", None, PAID_AT)
    assert fee_due(PARK, stay, first, minutes(100)) == Decimal("2.00")  # two hours less the one paid
    assert fee_due(PARK, stay, first, minutes(119)) == Decimal("2.00")
    assert fee_due(PARK, stay, first, minutes(125)) == Decimal("4.00")
    # At the pay station again at 100 minutes: only the extra 2.00, and the stay is paid 4.00 in all.
    second = next_payment(PARK, "AB1", ENTERED, "r1", first, minutes(100))
    assert (second.amount, second.paid_total) == (Decimal("2.00"), Decimal("4.00"))
    assert fee_due(PARK, stay, second, minutes(112)) == Decimal("0.00")
    assert fee_due(PARK, stay, second, minutes(125)) == Decimal("2.00")  # past the second grace: the third hour


def test_a_short_payment_leaves_the_rest_due_and_an_earlier_stays_payment_does_not_count():
    stay = Stay(ENTERED, "r1")
    short = next_payment(PARK, "AB1", ENTERED, "r1", None, PAID_AT, Decimal("1.50"))
    assert fee_due(PARK, stay, short, minutes(60)) == Decimal("0.50")
    yesterday = next_payment(PARK, "AB1", ENTERED - timedelta(days=1), "r0", None, PAID_AT - timedelta(days=1))
    today = next_payment(PARK, "AB1", ENTERED, "r1", yesterday, PAID_AT)
    assert (today.amount, today.paid_total) == (Decimal("2.00"), Decimal("2.00"))


def test_the_stay_the_job_sends_costs_what_the_barrier_asked():
    entry = Passage(ENTERED, "in", "entry")
    on_time = Passage(minutes(68), "out", "exit", paid_at=PAID_AT)
    late = Passage(minutes(100), "out", "exit", paid_at=PAID_AT)
    unpaid = Passage(minutes(68), "out", "exit")
    fees = [pair("AB1", PARK, [entry, out], frozenset(), now=minutes(200))[0].fee for out in (on_time, late, unpaid)]
    assert fees == [Decimal("2.00"), Decimal("4.00"), Decimal("4.00")]


def test_the_jobs_state_keeps_the_payment_of_an_exit_and_reads_passages_saved_without_one():
    kept = PlateStays([Passage(ENTERED, "in", "entry"), Passage(minutes(68), "out", "exit", paid_at=PAID_AT)])
    back = PlateStays.from_json(kept.to_json())
    assert [p.paid_at for p in back.passages] == [None, PAID_AT]
    old = {"passages": [[ENTERED.isoformat(), "in", "entry", None]], "sent": []}
    assert PlateStays.from_json(old).passages == [Passage(ENTERED, "in", "entry")]


def test_a_lost_entry_payment_counts_only_for_the_exit_just_after_it():
    paid = next_payment(PARK, "AB1", None, None, None, PAID_AT)
    assert paid.amount == Decimal("12.00")  # the lost-entry fee: the daily cap
    assert fee_due(PARK, None, payment_of_stay(paid, None, minutes(65), 15), minutes(65)) == Decimal("0.00")
    # A week later, another exit with no entry seen: that payment was for another stay.
    week = minutes(7 * 24 * 60)
    assert payment_of_stay(paid, None, week, 15) is None
    assert next_payment(PARK, "AB1", None, None, paid, week).paid_total == Decimal("12.00")


def test_the_money_taken_for_a_stay_is_every_payment_that_names_it():
    first = next_payment(PARK, "AB1", ENTERED, "r1", None, PAID_AT)
    second = next_payment(PARK, "AB1", ENTERED, "r1", first, minutes(100))
    yesterday = next_payment(PARK, "AB1", ENTERED - timedelta(days=1), "r0", None, PAID_AT - timedelta(days=1))
    lost = next_payment(PARK, "AB1", None, None, None, minutes(300))
    payments = [first, second, yesterday, lost]
    assert paid_for_stay(payments, ENTERED, minutes(110), 15) == Decimal("4.00")
    assert paid_for_stay(payments, None, minutes(305), 15) == Decimal("12.00")  # the exit just after paying
    assert paid_for_stay(payments, None, minutes(400), 15) == Decimal("0.00")  # another visit's exit
    assert paid_for_stay(payments, ENTERED + timedelta(days=2), None, 15) == Decimal("0.00")
