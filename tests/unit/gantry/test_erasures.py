"""The erasure block-list's rules, the short retention of the topics an erasure cannot reach, and
what the erasure report says Kafka still holds."""

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from gantry import topics
from gantry.config import GantryConfig
from gantry.erasures import BlockList, entry, still_held
from gantry.events import Journey, PlateRead
from gantry.kafka import new_topic
from gantry.privacy import pseudonymise
from gantry.site_events import GateDecision, ParkingPayment, ParkingSession

KEY = SecretStr("unit-key")
ERASED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def read(plate: str, ts: datetime) -> PlateRead:
    return PlateRead(read_id="r", camera_id="c", ts=ts, plate=plate, confidence=0.9)


def test_the_block_list_covers_an_erased_plates_past_only():
    blocklist = BlockList(lambda: KEY)
    assert blocklist.apply(pseudonymise("ER45ASE", KEY).encode(), entry(ERASED_AT)) == pseudonymise("ER45ASE", KEY)
    assert blocklist.blocks(read("ER45ASE", ERASED_AT - timedelta(seconds=1)))
    assert not blocklist.blocks(read("ER45ASE", ERASED_AT))  # a new sighting is new data
    assert not blocklist.blocks(read("KE3PME", ERASED_AT - timedelta(days=1)))
    journey = Journey(journey_id="j", segment_id="s", plate_pseudonym=pseudonymise("ER45ASE", KEY),
                      start_ts=ERASED_AT - timedelta(minutes=5), end_ts=ERASED_AT - timedelta(minutes=4),
                      travel_s=60, speed_kmh=30, from_read_id="a", to_read_id="b")
    assert blocklist.blocks(journey)
    blocklist.apply(pseudonymise("ER45ASE", KEY).encode(), None)  # a tombstone lifts it
    assert not blocklist.blocks(read("ER45ASE", ERASED_AT - timedelta(seconds=1))) and blocklist.newest is None


def test_the_key_is_needed_only_once_there_is_an_erasure():
    def no_key() -> SecretStr:
        raise AssertionError("asked for the key")

    assert not BlockList(no_key).blocks(read("ER45ASE", ERASED_AT))


def test_topics_an_erasure_cannot_reach_are_kept_for_a_short_time():
    config = GantryConfig()
    for name in (topics.LATE_READS, topics.DEAD_LETTERS, topics.WEBHOOK_DEAD_LETTERS):
        assert new_topic(config, name).topic_configs == {"retention.ms": str(topics.SHORT_RETENTION_MS)}
    assert new_topic(config, topics.PLATE_READS).topic_configs == {"retention.ms": str(7 * 86_400_000)}
    assert new_topic(config, topics.HOTLIST).topic_configs == {}
    assert new_topic(config, topics.ERASURES, compacted=True).topic_configs == {"cleanup.policy": "compact"}


def test_the_report_says_until_when_kafka_holds_the_plate():
    held = {h.topic: h for h in still_held(ERASED_AT, embedded_broker=False)}
    assert held[topics.DEAD_LETTERS].until == ERASED_AT + timedelta(milliseconds=topics.SHORT_RETENTION_MS)
    assert held[topics.PLATE_READS].until == ERASED_AT + timedelta(days=7)
    assert held[topics.PLATE_HISTORIES].until is None
    embedded = {h.topic: h for h in still_held(ERASED_AT, embedded_broker=True)}
    assert set(embedded) == set(held)
    assert embedded[topics.LATE_READS].until == held[topics.LATE_READS].until  # its object store enforces it
    assert embedded[topics.PLATE_READS].until == held[topics.PLATE_READS].until  # a week, as Kafka's default
    assert embedded[topics.GATE_DECISIONS].until is None  # no retention.ms: kept until the storage goes
    assert held[topics.FRAMES].until == ERASED_AT + timedelta(days=1)  # pictures: a day at most


def test_the_block_list_covers_the_car_parks_decisions_stays_and_payments():
    blocklist = BlockList(lambda: KEY)
    blocklist.apply(pseudonymise("ER45ASE", KEY).encode(), entry(ERASED_AT))
    before, after = ERASED_AT - timedelta(hours=1), ERASED_AT + timedelta(seconds=1)

    def decision(plate: str, ts: datetime, listed: str | None = None) -> GateDecision:
        return GateDecision(decision_id="d", read_id="r", site_id="s", camera_id="c", direction="entry", ts=ts,
                            plate=plate, decision="allow", reason="listed", listed_plate=listed)

    def stay(ts: datetime) -> ParkingSession:
        return ParkingSession(session_id="s", car_park_id="p", plate="ER45ASE", status="open", first_ts=ts, entry_ts=ts,
                              fee="0.00", currency="GBP", version=1)

    def payment(ts: datetime) -> ParkingPayment:
        return ParkingPayment(payment_id="p", car_park_id="p", plate="ER45ASE", paid_at=ts, amount="1.00",
                              currency="GBP")

    assert [blocklist.blocks(row) for row in (decision("ER45ASE", before), decision("ER4SASE", before, "ER45ASE"),
                                              stay(before), payment(before))] == [True] * 4
    assert [blocklist.blocks(row) for row in (decision("ER45ASE", after), decision("KE3PME", before), stay(after),
                                              payment(after))] == [False] * 4
