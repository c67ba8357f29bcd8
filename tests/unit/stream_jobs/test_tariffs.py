from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gantry.config import load_config
from gantry.events import ChargeConcession, RegisteredVehicle
from stream_jobs.charges.days import DayLedger
from stream_jobs.charges.registers import ChargeRegisters
from stream_jobs.charges.rules import classify, day_charges, day_end, is_charging, price, zone_charge
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
    assert price("AB12CDE", date(2026, 11, 23), tariff, "lorry") == ("lorry", "charged", Decimal("25.00"))
    assert price("AB12CDE", date(2026, 11, 23), tariff, "tractor") == ("car", "charged", Decimal("15.00"))  # unpriced


def test_the_class_comes_from_the_register_then_the_camera_then_the_default(zones):
    tariff, ulez = zones["congestion"].tariff, zones["ulez"].tariff
    assert classify(tariff, "van", "truck") == ("van", "register")
    assert classify(tariff, None, "truck") == ("lorry", "camera")  # through camera_classes
    assert classify(tariff, None, "motorcycle") == ("motorcycle", "camera")  # a type named like a class
    assert classify(tariff, "tractor", "van") == ("van", "camera")  # a registered class the zone does not price
    assert classify(tariff, None, "unicycle") == ("car", "default")
    assert classify(ulez, "lorry", "truck") == ("car", "default")  # the ULEZ prices every vehicle alike


def test_registered_concessions_apply_with_the_tariffs_own_within_their_validity(zones):
    zone = zones["congestion"]
    registers = ChargeRegisters()
    for concession in (
        ChargeConcession(zone_id="congestion", plate="AB12CDE", kind="discount", percent_off=50,
                         valid_from=date(2026, 11, 23), valid_until=date(2026, 11, 24)),
        ChargeConcession(zone_id="ulez", plate="AB12CDE", kind="exemption"),  # another zone's
        ChargeConcession(zone_id="congestion", plate="RS19DEF", kind="discount", percent_off=20),
        ChargeConcession(zone_id="congestion", plate="FL33TEX", kind="exemption", valid_until=date(2026, 11, 22)),
    ):
        registers.concessions.put(concession)

    def owed(plate: str, day: date) -> tuple[str, Decimal]:
        on = registers.concessions_on(zone.id, plate, day)
        _, status, amount = price(plate, day, zone.tariff, "car", on)
        return status, amount

    assert owed("AB12CDE", date(2026, 11, 23)) == ("discounted", Decimal("7.50"))
    assert owed("AB12CDE", date(2026, 11, 25)) == ("charged", Decimal("15.00"))  # past valid_until
    assert owed("RS19DEF", date(2026, 11, 23)) == ("discounted", Decimal("1.50"))  # the larger (YAML's 90 %) wins
    assert owed("FL33TEX", date(2026, 11, 22)) == ("exempt", Decimal("0.00"))
    assert owed("FL33TEX", date(2026, 11, 23)) == ("charged", Decimal("15.00"))


def test_a_plate_registered_again_takes_its_newest_class_on_each_day():
    registers = ChargeRegisters()
    registers.vehicles.put(RegisteredVehicle(plate="AB12CDE", vehicle_class="van"))
    registers.vehicles.put(RegisteredVehicle(plate="AB12CDE", vehicle_class="lorry", valid_from=date(2026, 11, 23),
                                             valid_until=date(2026, 11, 30)))
    assert registers.vehicle_class("AB12CDE", date(2026, 11, 22)) == "van"
    assert registers.vehicle_class("AB12CDE", date(2026, 11, 23)) == "lorry"
    assert registers.vehicle_class("AB12CDE", date(2026, 12, 1)) == "van"
    assert registers.vehicle_class("XY99ZZZ", date(2026, 11, 23)) is None
    registers.vehicles.remove("AB12CDE:2026-11-23")
    assert registers.vehicle_class("AB12CDE", date(2026, 11, 23)) == "van"


def test_a_days_charge_records_its_class_and_where_it_came_from(zones):
    zone = zones["congestion"]
    t = int(utc(2026, 11, 23, 9, 0).timestamp() * 1000)
    reads = [Sighting(t, "cam-bank", "unclassified"), Sighting(t + 60_000, "cam-holborn", "truck", vehicle_class="truck"),
             Sighting(t + 120_000, "cam-bank", "later-van", vehicle_class="van")]
    [camera] = day_charges("AB12CDE", passages(reads, 10), zone).values()
    assert (camera.vehicle_class, camera.class_source, camera.amount) == ("lorry", "camera", Decimal("25.00"))
    assert camera.first.first.read_id == "unclassified"  # the first read stays the charge's first read
    registers = ChargeRegisters()
    registers.vehicles.put(RegisteredVehicle(plate="AB12CDE", vehicle_class="van"))
    [registered] = day_charges("AB12CDE", passages(reads, 10), zone, registers=registers).values()
    charge = zone_charge("AB12CDE", zone, registered)
    assert (charge.vehicle_class, charge.vehicle_class_source, charge.amount) == ("van", "register", Decimal("15.00"))
    [default] = day_charges("AB12CDE", passages(reads[:1], 10), zone).values()
    assert zone_charge("AB12CDE", zone, default).vehicle_class_source == "default"


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