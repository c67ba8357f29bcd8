"""Closing a zone's charging day on all partitions' parts (stream_jobs.charges.closing), without Kafka."""

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson

from gantry import topics
from gantry.config import GantryConfig, Zone
from gantry.events import ZoneDay, ZoneDayPart
from stream_jobs.app import internal_topics
from stream_jobs.charges.closing import KEEP_CLOSED_DAYS, ClosingState, Share, ZoneLedger, ledger_key

ZONE = Zone(id="centre", cameras=["cam-1"])
DAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 3, 6, tzinfo=UTC)


def part(partition: int, charges: int, total: str, day: date = DAY) -> ZoneDayPart:
    return ZoneDayPart(zone_id=ZONE.id, charge_date=day, partition=partition, charges=charges,
                       total_amount=Decimal(total))


def test_a_day_closes_when_every_partition_has_sent_its_part_in_any_order():
    ledger = ZoneLedger()
    assert ledger.take(ZONE, part(2, 1, "15.00"), 3, NOW) is None
    assert ledger.take(ZONE, part(0, 0, "0.00"), 3, NOW) is None
    summary = ledger.take(ZONE, part(1, 2, "16.50"), 3, NOW)
    assert summary == ZoneDay(zone_id=ZONE.id, charge_date=DAY, charges=3, total_amount=Decimal("31.50"),
                              currency="GBP", closed_at=NOW)
    assert ledger.open == {}


def test_a_part_sent_twice_counts_once_and_a_part_after_closing_sends_the_same_summary():
    ledger = ZoneLedger()
    ledger.take(ZONE, part(0, 1, "15.00"), 2, NOW)
    assert ledger.take(ZONE, part(0, 1, "15.00"), 2, NOW) is None  # the same partition again: still open
    first = ledger.take(ZONE, part(1, 1, "15.00"), 2, NOW)
    again = ledger.take(ZONE, part(1, 1, "15.00"), 2, datetime(2026, 3, 9, tzinfo=UTC))
    assert first is not None and first.charges == 2
    assert again == first  # closed_at included: a replay after a crash sends what was sent


def test_only_the_latest_closed_days_are_remembered():
    ledger = ZoneLedger()
    for n in range(KEEP_CLOSED_DAYS + 5):
        ledger.take(ZONE, part(0, 0, "0.00", date.fromordinal(DAY.toordinal() + n)), 1, NOW)
    assert len(ledger.closed) == KEEP_CLOSED_DAYS
    assert min(ledger.closed) == date.fromordinal(DAY.toordinal() + 5)


def test_a_ledger_saved_by_the_faust_table_before_loads_and_saves_in_the_same_form():
    closed = ZoneDay(zone_id=ZONE.id, charge_date=date(2026, 3, 1), charges=4, total_amount=Decimal("60.00"),
                     currency="GBP", closed_at=NOW)
    saved = {"open": {"2026-03-02": {"1": [2, "30.00"]}}, "closed": {"2026-03-01": closed.model_dump_json()}}
    entries = {orjson.dumps("zone:centre"): orjson.dumps(saved)}
    state = ClosingState.from_entries(entries)
    ledger = state.ledgers["centre"]
    assert ledger.open == {DAY: {1: Share(2, Decimal("30.00"))}}
    assert ledger.closed == {date(2026, 3, 1): closed}
    assert ledger.take(ZONE, part(0, 1, "15.00"), 2, NOW).total_amount == Decimal("45.00")
    state.changed.add("centre")
    saved_again = state.changes()
    assert list(saved_again) == [ledger_key("centre")] == list(entries)
    assert ZoneLedger.from_json(orjson.loads(saved_again[ledger_key("centre")])) == ledger
    assert state.changes() == {}


def test_every_topic_the_jobs_create_for_themselves_is_named_in_gantry_topics():
    config = GantryConfig(broker={"partitions": 6, "topic_partitions": {"zone_charges": 2}})
    created = {t.name: t for t in internal_topics(config)}
    assert set(created) == set(topics.INTERNAL)
    assert created[topics.ZONE_DAY_LEDGERS].num_partitions == 2  # like the parts, keyed by zone
    assert created[topics.PLATE_HISTORIES].num_partitions == 6  # like plate_reads
