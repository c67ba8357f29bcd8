import random
from datetime import timedelta
from decimal import Decimal

from site_examples import MONDAY

from gantry.sites import CarPark
from sites.pairing import Passage, distinct, pair, session_id

PARK = CarPark(id="p1", capacity=10, max_stay_hours=12,
               tariff={"free_minutes": 20, "per_hour": "2.00", "daily_cap": "12.00", "missed_exit_fee": "20.00"})
FREE = frozenset({"permit"})
T = MONDAY + timedelta(hours=8)
LATER = MONDAY + timedelta(days=2)


def p(minutes: float, direction: str, read_id: str | None = None, list_: str | None = None) -> Passage:
    return Passage(T + timedelta(minutes=minutes), read_id or f"{direction}@{minutes}", direction, list_)


def summary(passages, now=LATER):
    return [(s.status, s.entry.read_id if s.entry else None, s.exit.read_id if s.exit else None, str(s.fee), s.overstay)
            for s in pair("AB1", PARK, passages, FREE, now=now)]


def test_an_entry_and_its_exit_are_a_closed_stay_with_its_fee():
    (stay,) = pair("AB1", PARK, [p(0, "entry"), p(150, "exit")], FREE, now=LATER)
    assert (stay.status, stay.fee, stay.duration_s) == ("closed", Decimal("6.00"), 150 * 60)
    assert stay.session_id == session_id("p1", "AB1", stay.entry, None)


def test_the_open_stay_keeps_its_id_when_it_closes():
    (open_,) = pair("AB1", PARK, [p(0, "entry")], FREE, now=T)
    (closed,) = pair("AB1", PARK, [p(0, "entry"), p(30, "exit")], FREE, now=T)
    assert (open_.status, open_.fee) == ("open", Decimal("0.00")) and closed.status == "closed"
    assert open_.session_id == closed.session_id


def test_a_missed_exit_and_a_missed_entry():
    assert summary([p(0, "entry"), p(60, "entry"), p(90, "exit")]) == [
        ("exit_missed", "entry@0", None, "20.00", False),
        ("closed", "entry@60", "exit@90", "2.00", False),
    ]
    assert summary([p(0, "exit"), p(60, "entry"), p(61, "exit")]) == [
        ("entry_missed", None, "exit@0", "12.00", False),
        ("closed", "entry@60", "exit@61", "0.00", False),
    ]


def test_duplicates_are_one_passage():
    same_read_twice = [p(0, "entry", "r1"), p(0, "entry", "r1"), p(45, "exit", "r2")]
    looked_twice = [p(0, "entry", "r1"), p(0.5, "entry", "r1b"), p(45, "exit", "r2"), p(45.2, "exit", "r2b")]
    assert summary(same_read_twice) == summary(looked_twice) == [("closed", "r1", "r2", "2.00", False)]
    # the same direction further apart than dedup_s is a missed read in between
    assert [s.status for s in pair("AB1", PARK, [p(0, "entry"), p(2, "entry")], FREE, now=LATER)] == [
        "exit_missed", "open"]


def test_order_of_arrival_does_not_matter():
    passages = [p(0, "entry"), p(0.3, "entry"), p(100, "exit"), p(300, "exit"), p(400, "entry"), p(401, "entry"),
                p(900, "entry"), p(1000, "exit")]
    expected = summary(passages)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(passages)
        assert summary(passages) == expected
    assert [s[0] for s in expected] == ["closed", "entry_missed", "exit_missed", "closed"]


def test_a_late_entry_turns_a_missed_entry_into_a_stay():
    before = pair("AB1", PARK, [p(60, "exit")], FREE, now=LATER)
    after = pair("AB1", PARK, [p(60, "exit"), p(0, "entry")], FREE, now=LATER)
    assert [s.status for s in before] == ["entry_missed"] and [s.status for s in after] == ["closed"]
    assert before[0].session_id != after[0].session_id  # the job withdraws the first


def test_free_parking_lists_make_a_stay_free_by_its_entry_or_exit():
    assert summary([p(0, "entry", list_="permit"), p(300, "exit")]) == [("closed", "entry@0", "exit@300", "0.00", False)]
    assert summary([p(0, "entry"), p(300, "exit", list_="permit")])[0][3] == "0.00"
    assert summary([p(0, "entry", list_="visitors"), p(300, "exit")])[0][3] == "10.00"
    (stay,) = pair("AB1", PARK, [p(0, "entry", list_="permit"), p(10, "entry")], FREE, now=LATER)[:1]
    assert (stay.status, stay.fee, stay.free_list) == ("exit_missed", Decimal("0.00"), "permit")


def test_overstay():
    assert summary([p(0, "entry")], now=T + timedelta(hours=11))[0][4] is False
    assert summary([p(0, "entry")], now=T + timedelta(hours=12, seconds=1))[0][4] is True
    assert summary([p(0, "entry"), p(13 * 60, "exit")])[0][4] is True
    assert summary([p(0, "entry"), p(60, "entry")], now=LATER)[0][4] is False  # an exit_missed stay is no overstay


def test_distinct_keeps_the_earliest_look():
    assert [x.read_id for x in distinct([p(0.5, "exit", "b"), p(0, "exit", "a")], 60)] == ["a"]
