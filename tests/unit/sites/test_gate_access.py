from datetime import timedelta
from decimal import Decimal

import pytest
from site_examples import MONDAY, book, entry, read, site

from gantry.site_events import ParkingPayment
from sites.access import decide, decision_id
from sites.presence import Presence

HQ = site()
GATES = {g.camera: g for g in HQ.gates}
NOON = MONDAY + timedelta(hours=12)


def at(camera: str, plate: str, ts=NOON, *, lists=None, presence=None, where=HQ):
    gate = {g.camera: g for g in where.gates}[camera]
    return decide(read(plate, camera, ts), where, gate, lists or book(), presence or Presence())


def test_an_allow_list_opens_and_says_which_list_and_holder():
    decision = at("gate-in", "AB12CDE", lists=book(entry("AB12CDE", "visitors", holder="user-7")))
    assert (decision.decision, decision.reason, decision.list, decision.holder, decision.match) == (
        "allow", "listed", "visitors", "user-7", "exact")
    assert decision.decision_id == decision_id(decision.read_id) and decision.opens


def test_a_deny_list_refuses_at_entry_and_exit_and_wins_over_an_allow_list():
    lists = book(entry("AB12CDE", "banned"), entry("AB12CDE", "staff"))
    for camera in ("gate-in", "gate-out", "yard"):
        decision = at(camera, "AB12CDE", lists=lists)
        assert (decision.decision, decision.reason, decision.list) == ("deny", "deny_list", "banned")


def test_lists_the_site_does_not_name_mean_nothing_here():
    decision = at("gate-in", "AB12CDE", lists=book(entry("AB12CDE", "stolen-elsewhere")))
    assert (decision.decision, decision.reason, decision.list) == ("deny", "unknown_denied", None)


@pytest.mark.parametrize(("policy", "decision", "reason", "flagged"), [
    ("deny", "deny", "unknown_denied", False),
    ("allow", "allow", "unknown_allowed", False),
    ("flag", "allow", "unknown_flagged", True),
])
def test_unknown_plate_policy(policy, decision, reason, flagged):
    got = at("gate-in", "ZZ99ZZZ", where=site(unknown_plates=policy))
    assert (got.decision, got.reason, got.flagged) == (decision, reason, flagged)


def test_opening_hours_are_per_list_and_local():
    lists = book(entry("STAFF1", "staff"))
    assert at("gate-in", "STAFF1", MONDAY + timedelta(hours=7), lists=lists).reason == "listed"
    assert at("gate-in", "STAFF1", MONDAY + timedelta(hours=19), lists=lists).reason == "outside_hours"
    assert at("gate-in", "STAFF1", MONDAY + timedelta(hours=6, minutes=59), lists=lists).reason == "outside_hours"
    saturday = MONDAY + timedelta(days=5, hours=12)
    assert at("gate-in", "STAFF1", saturday, lists=lists).reason == "outside_hours"  # a day left out is closed
    # In summer London is UTC+1: 06:30 UTC is 07:30 local, inside the hours.
    summer_monday = MONDAY.replace(month=6, day=22) + timedelta(hours=6, minutes=30)
    assert at("gate-in", "STAFF1", summer_monday, lists=lists).reason == "listed"
    # A list without hours is always open.
    assert at("gate-in", "VIS1", saturday.replace(hour=3), lists=book(entry("VIS1", "visitors"))).reason == "listed"


def test_validity_of_an_entry():
    visitor = entry("VIS1", "visitors", valid_from=NOON - timedelta(hours=1), valid_until=NOON + timedelta(hours=1))
    lists = book(visitor)
    assert at("gate-in", "VIS1", NOON, lists=lists).reason == "listed"
    assert at("gate-in", "VIS1", NOON + timedelta(hours=1), lists=lists).reason == "not_valid"  # until is exclusive
    assert at("gate-in", "VIS1", NOON - timedelta(hours=2), lists=lists).reason == "not_valid"
    # an expired deny entry no longer refuses
    assert at("gate-in", "OLD1", lists=book(entry("OLD1", "banned", valid_until=NOON))).reason == "unknown_denied"


def test_a_valid_entry_on_another_list_wins_over_an_entry_outside_its_hours():
    lists = book(entry("BOTH1", "staff"), entry("BOTH1", "visitors"))
    assert at("gate-in", "BOTH1", MONDAY + timedelta(hours=22), lists=lists).list == "visitors"


def test_fuzzy_match_only_where_the_site_allows_it():
    lists = book(entry("AB12CDE", "visitors"), entry("8AD1", "banned"))
    assert at("gate-in", "A812CDE", lists=lists).reason == "unknown_denied"  # B read as 8
    fuzzy = site(fuzzy_match=True)
    got = at("gate-in", "A812CDE", lists=lists, where=fuzzy)
    assert (got.decision, got.match, got.listed_plate) == ("allow", "possible", "AB12CDE")
    assert at("gate-in", "BAD1", lists=lists, where=fuzzy).reason == "deny_list"  # 8 read as B, and 1 kept
    # an exact entry wins over a possible one
    both = book(entry("A812CDE", "staff"), entry("AB12CDE", "visitors"))
    assert at("gate-in", "A812CDE", lists=both, where=fuzzy).match == "exact"


def test_one_inside_per_holder():
    lists = book(entry("CAR1", "visitors", holder="family"), entry("CAR2", "visitors", holder="family"))
    presence = Presence()
    presence.enter("p1", "CAR1", NOON - timedelta(hours=1), "r1")
    assert at("gate-in", "CAR2", lists=lists, presence=presence).reason == "listed"  # the rule is off by default
    strict = site(one_inside_per_holder=True)
    got = at("gate-in", "CAR2", lists=lists, presence=presence, where=strict)
    assert (got.decision, got.reason, got.holder) == ("deny", "holder_inside", "family")
    assert at("gate-in", "CAR1", lists=lists, presence=presence, where=strict).reason == "listed"  # itself: a retry


def test_a_full_car_park_refuses_unknown_plates_but_not_listed_ones():
    presence = Presence()
    for n, plate in enumerate(("IN1", "IN2")):
        presence.enter("p1", plate, NOON - timedelta(hours=n + 1), f"r{n}")
    allow_all = site(unknown_plates="allow")
    assert at("gate-in", "NEW1", presence=presence, where=allow_all).reason == "full"
    assert at("gate-in", "NEW1", lists=book(entry("NEW1", "visitors")), presence=presence).reason == "listed"
    assert at("gate-in", "IN1", presence=presence, where=allow_all).reason == "unknown_allowed"  # already inside
    presence.leave("p1", "IN2", NOON - timedelta(minutes=1))
    assert at("gate-in", "NEW1", presence=presence, where=allow_all).reason == "unknown_allowed"


def test_pay_at_exit():
    presence = Presence()
    presence.enter("p1", "VIS1", NOON - timedelta(minutes=90), "r-in")
    got = at("gate-out", "VIS1", presence=presence)
    assert (got.decision, got.reason, got.amount, got.currency, got.entry_ts) == (
        "pay", "fee_due", Decimal("4.00"), "GBP", NOON - timedelta(minutes=90))
    presence.enter("p1", "QUICK1", NOON - timedelta(minutes=15), "r-q")
    quick = at("gate-out", "QUICK1", presence=presence)
    assert (quick.decision, quick.reason, quick.amount) == ("allow", "paid", Decimal("0.00"))


def test_an_exit_with_no_entry_pays_the_lost_entry_fee():
    got = at("gate-out", "NEVER1")
    assert (got.decision, got.reason, got.amount, got.entry_ts) == ("pay", "fee_due", Decimal("12.00"), None)


def test_free_parking_lists_at_exit():
    presence = Presence()
    presence.enter("p1", "PERM1", NOON - timedelta(hours=5), "r1", free_list="permit")
    got = at("gate-out", "PERM1", presence=presence)
    assert (got.decision, got.reason, got.amount, got.list) == ("allow", "paid", Decimal("0.00"), "permit")
    # on the permit list now, entry unseen: free too
    got = at("gate-out", "PERM2", lists=book(entry("PERM2", "permit")))
    assert (got.decision, got.list, got.amount) == ("allow", "permit", Decimal("0.00"))


def test_a_misread_exit_finds_its_stay_only_where_fuzzy_matching_is_allowed():
    presence = Presence()
    presence.enter("p1", "AB12CDE", NOON - timedelta(minutes=30), "r1")
    assert at("gate-out", "A812CDE", presence=presence).amount == Decimal("12.00")  # no entry seen
    assert at("gate-out", "A812CDE", presence=presence, where=site(fuzzy_match=True)).amount == Decimal("2.00")


def test_an_exit_of_no_car_park_opens_for_everyone_not_denied():
    assert at("yard", "ANY1").reason == "exit"


def payment(plate: str, entry_ts, paid_at, amount: str) -> ParkingPayment:
    return ParkingPayment(payment_id=f"pay-{plate}", car_park_id="p1", plate=plate, stay_entry_ts=entry_ts,
                          paid_at=paid_at, amount=Decimal(amount), currency="GBP")


def test_a_paid_stay_opens_the_exit_within_the_grace_minutes():
    presence = Presence()
    entered = NOON - timedelta(minutes=55)
    presence.enter("p1", "PAID1", entered, "r1")
    presence.pay(payment("PAID1", entered, NOON - timedelta(minutes=5), "2.00"))  # 50 minutes: one hour's fee
    on_time = at("gate-out", "PAID1", NOON + timedelta(minutes=10), presence=presence)
    assert (on_time.decision, on_time.reason, on_time.amount) == ("allow", "paid", Decimal("0.00"))
    # 25 minutes after paying, past the 15 grace minutes: the stay is 85 minutes, two hours' fee
    late = at("gate-out", "PAID1", NOON + timedelta(minutes=30), presence=presence)
    assert (late.decision, late.reason, late.amount) == ("pay", "fee_due", Decimal("2.00"))


def test_a_payment_counts_only_for_the_stay_it_paid():
    presence = Presence()
    presence.pay(payment("AGAIN1", NOON - timedelta(days=1), NOON - timedelta(days=1, minutes=-90), "4.00"))
    presence.enter("p1", "AGAIN1", NOON - timedelta(minutes=90), "r2")
    assert at("gate-out", "AGAIN1", presence=presence).amount == Decimal("4.00")
    # an exit with no entry seen, paid at the lost-entry fee
    presence.pay(payment("LOST1", None, NOON - timedelta(minutes=1), "12.00"))
    assert at("gate-out", "LOST1", presence=presence).decision == "allow"
