from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gantry.config import load_config
from stream_jobs.charges.days import DayLedger
from stream_jobs.charges.rules import day_charges, day_end, is_charging, price, zone_charge
from stream_jobs.passages import Sighting, passages

EXAMPLE = Path(__file__).parents[3] / "examples" / "gantry.yaml"


@pytest.fixture(scope="module")
def zones():
    return {z.id: z for z in load_config(EXAMPLE).zones}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_london_hours_weekday_weekend_and_christmas(zones):
    tariff = zones["congestion"].tariff
    assert is_charging(utc(2026, 11, 23, 7, 0), tariff)  # Monday 07:00 GMT
    assert not is_charging(utc(2026, 11, 23, 18, 0), tariff)  # end is exclusive
    assert not is_charging(utc(2026, 11, 21, 11, 59), tariff)  # Saturday before noon
    assert is_charging(utc(2026, 11, 21, 12, 0), tariff)
    assert not is_charging(utc(2026, 12, 29, 10, 0), tariff)  # Christmas to New Year: free
    assert is_charging(utc(2027, 7, 5, 6, 30), tariff)  # 07:30 BST is 06:30 UTC


def test_ulez_charges_around_the_clock_until_local_midnight(zones):
    tariff = zones["ulez"].tariff
    assert is_charging(utc(2026, 11, 23, 0, 0), tariff) and is_charging(utc(2026, 11, 23, 23, 59), tariff)
    assert day_end(date(2027, 7, 5), tariff) == utc(2027, 7, 5, 23, 0)


def test_price_exempt_discounted_charged(zones):
    tariff = zones["congestion"].tariff
    assert price("LX21AMB", date(2026, 11, 23), tariff) == ("car", "exempt", Decimal("0.00"))
    assert price("RS19DEF", date(2026, 11, 23), tariff) == ("car", "discounted", Decimal("1.50"))
    assert price("AB12CDE", date(2026, 11, 23), tariff, "lorry") == ("car", "charged", Decimal("15.00"))


def test_one_charge_per_day_with_first_read_and_count(zones):
    zone = zones["congestion"]
    t = int(utc(2026, 11, 23, 6, 0).timestamp() * 1000)
    reads = [
        Sighting(t, "cam-bank", "early"),  # before 07:00: not charged
        Sighting(t + 3_600_000 * 2, "cam-holborn", "first"),
        Sighting(t + 3_600_000 * 3, "cam-bank", "second"),
        Sighting(t + 3_600_000 * 3 + 2000, "cam-bank", "dup"),
        Sighting(t + 3_600_000 * 4, "cam-north", "outside-zone"),
    ]
    [(day, owed)] = day_charges("AB12CDE", passages(reads, 10), zone).items()
    charge = zone_charge("AB12CDE", zone, owed)
    assert day == charge.charge_date == date(2026, 11, 23)
    assert (charge.first_read_id, charge.first_camera_id, charge.read_count) == ("first", "cam-holborn", 2)
    assert charge.amount == Decimal("15.00") and charge.status == "charged"


def test_a_partitions_day_part_is_sent_once_past_its_local_end_plus_lateness(zones):
    zone = zones["congestion"]  # London: in summer a day ends at 23:00 UTC
    end_ms = int(utc(2027, 7, 5, 23, 0).timestamp() * 1000)
    ledger = DayLedger()
    [owed] = day_charges("AB12CDE", passages([Sighting(end_ms - 8 * 3_600_000, "cam-holborn", "r1")], 10), zone).values()
    ledger.record(zone_charge("AB12CDE", zone, owed))
    first = ledger.advance([zone], 3, end_ms - 7 * 3_600_000, end_ms + 299_999, 300_000, "r2")
    assert first == []
    [part] = ledger.advance([zone], 3, end_ms + 299_999, end_ms + 300_000, 300_000, "r3")
    assert (part.charge_date, part.partition, part.charges, part.total_amount) == (date(2027, 7, 5), 3, 1, Decimal("15.00"))
    assert ledger.advance([zone], 3, end_ms + 300_000, end_ms + 3_600_000, 300_000, "r4") == []
    assert ledger.sent_by("r3") == [part]  # a replay of the read that sent it sends it again
    [empty] = ledger.advance([zone], 3, end_ms + 3_600_000, end_ms + 86_400_000 + 300_000, 300_000, "r5")
    assert (empty.charge_date, empty.charges, empty.total_amount) == (date(2027, 7, 6), 0, Decimal("0.00"))