from datetime import timedelta
from decimal import Decimal

from aiokafka import ConsumerRecord
from site_examples import MONDAY, book, entry

from gantry import topics
from gantry.events import encode
from gantry.site_events import ParkingPayment, ParkingSession
from sites.feed import SiteFeed
from sites.gatekeeper import Gatekeeper
from sites.lists import ListBook
from sites.presence import Presence
from stream_jobs.hotlist.store import read_csv, write_csv

T = MONDAY + timedelta(hours=9)


def session(status, entry_ts=None, exit_ts=None, entry_read_id="r-in", **more) -> ParkingSession:
    return ParkingSession(session_id="s", car_park_id="p1", plate="AB1", status=status, entry_ts=entry_ts,
                          first_ts=entry_ts or exit_ts,
                          exit_ts=exit_ts, entry_read_id=entry_read_id, fee=Decimal("0"), currency="GBP", version=1,
                          **more)


def test_own_decisions_and_the_topic_agree_whatever_comes_first():
    presence = Presence()
    presence.enter("p1", "AB1", T, "r-in")
    presence.leave("p1", "AB1", T + timedelta(hours=1))
    presence.apply(session("open", T))  # the job's message about the stay, after the car left
    assert presence.stay("p1", "AB1") is None
    presence.enter("p1", "AB1", T + timedelta(hours=3), "r-in2")
    presence.apply(session("closed", T, T + timedelta(hours=1)))  # an older exit does not end the new stay
    assert presence.stay("p1", "AB1").entry_read_id == "r-in2" and presence.occupancy("p1") == 1


def test_the_topic_alone_keeps_presence():
    presence = Presence()
    presence.apply(session("open", T, list="permit"))
    assert presence.stay("p1", "AB1").free_list == "permit"
    presence.apply(session("exit_missed", T))
    assert presence.occupancy("p1") == 0
    presence.apply(session("open", T + timedelta(hours=2), entry_read_id="r2"))
    presence.apply(session("open", T, withdrawn=True))  # withdraws another stay: no effect
    assert presence.stay("p1", "AB1").entry_read_id == "r2"
    presence.apply(session("open", T + timedelta(hours=2), entry_read_id="r2", withdrawn=True))
    assert presence.stay("p1", "AB1") is None


def test_an_earlier_entry_never_replaces_a_later_one():
    presence = Presence()
    presence.enter("p1", "AB1", T + timedelta(hours=2), "late")
    presence.enter("p1", "AB1", T, "early")
    assert presence.stay("p1", "AB1").entry_read_id == "late"


def test_presence_survives_its_snapshot():
    presence = Presence()
    presence.enter("p1", "AB1", T, "r1", free_list="permit")
    presence.leave("p1", "CD2", T)
    again = Presence.from_json(presence.to_json())
    assert again.stay("p1", "AB1") == presence.stay("p1", "AB1")
    again.enter("p1", "CD2", T - timedelta(minutes=1), "old")
    assert again.stay("p1", "CD2") is None  # its last exit came back too


def test_a_holder_has_several_plates():
    lists = book(entry("CAR1", "staff", holder="u1"), entry("CAR2", "visitors", holder="u1"), entry("CAR3", "staff"))
    assert lists.plates_of("u1") == {"CAR1", "CAR2"}
    lists.remove("visitors:CAR2")
    assert lists.plates_of("u1") == {"CAR1"}
    lists.put(entry("CAR1", "staff", holder="u2"))  # re-listed under another holder
    assert lists.plates_of("u1") == set() and lists.plates_of("u2") == {"CAR1"}


def test_holders_travel_with_the_hotlist_files(tmp_path):
    path = tmp_path / "lists.csv"
    path.write_text("plate,list,holder\nab-12 cde,staff,user-7\nCD34EFG,staff,user-7\nEF56GHI,visitors,\n")
    entries = read_csv(path)
    assert [(e.plate, e.holder) for e in entries] == [("AB12CDE", "user-7"), ("CD34EFG", "user-7"), ("EF56GHI", None)]
    write_csv(tmp_path / "out.csv", entries)
    assert read_csv(tmp_path / "out.csv") == entries
    assert book(*entries).plates_of("user-7") == {"AB12CDE", "CD34EFG"}


def test_an_erasures_tombstones_make_the_edge_forget_the_plates_stay_and_payment(tmp_path):
    feed = SiteFeed("unused:9092", Gatekeeper([]), tmp_path)
    paid = ParkingPayment(payment_id="p", car_park_id="p1", plate="AB1", stay_entry_ts=T, paid_at=T + timedelta(hours=1),
                          amount="2.00", currency="GBP")

    def record(topic: str, plate: str, value: bytes | None) -> ConsumerRecord:
        key = f"p1:{plate}".encode()
        return ConsumerRecord(topic, 0, 0, 0, 0, key, value, None, len(key), len(value or b""), [])

    for plate in ("AB1", "KE3PME"):
        feed.apply(record(topics.PARKING_SESSIONS, plate, encode(session("open", T).model_copy(update={"plate": plate}))),
                   ListBook(), {})
        feed.apply(record(topics.PARKING_PAYMENTS, plate, encode(paid.model_copy(update={"plate": plate}))),
                   ListBook(), {})
    for topic in (topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS):
        feed.apply(record(topic, "AB1", None), ListBook(), {})
    presence = feed.gatekeeper.presence
    assert (presence.stay("p1", "AB1"), presence.latest_payment("p1", "AB1")) == (None, None)
    assert presence.stay("p1", "KE3PME").entry_ts == T and presence.latest_payment("p1", "KE3PME").amount == Decimal("2")


def test_records_that_are_no_entry_leave_the_gates_lists_and_stays_as_they_were(tmp_path):
    """A key that is not UTF-8 or a value that does not parse (a stranger's write to the topics)
    must not stop the gate's feed: it is skipped, and the entries and stays around it stand."""
    feed = SiteFeed("unused:9092", Gatekeeper([]), tmp_path)
    lists, raw = ListBook(), {}
    staff = entry("AB12CDE", "staff")

    def record(topic: str, key: bytes, value: bytes | None) -> ConsumerRecord:
        return ConsumerRecord(topic, 0, 0, 0, 0, key, value, None, len(key), len(value or b""), [])

    feed.apply(record(topics.HOTLIST, staff.key.encode(), encode(staff)), lists, raw)
    feed.apply(record(topics.PARKING_SESSIONS, b"p1:AB1", encode(session("open", T))), lists, raw)
    for topic in (topics.HOTLIST, topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS):
        for value in (None, b"not an event", encode(staff)):
            feed.apply(record(topic, b"\xff\xfe:\xc3(", value), lists, raw)
    assert [e.plate for e in lists.entries()] == ["AB12CDE"]
    assert feed.gatekeeper.presence.stay("p1", "AB1").entry_ts == T
