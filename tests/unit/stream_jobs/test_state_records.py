"""The stream jobs' saved state: typed records in memory, the same lists in the changelogs, and
entries saved by the version before the records load."""

from datetime import date
from decimal import Decimal

import orjson

from gantry.events import ZoneDayPart
from stream_jobs.charges.days import DayLedger, SentPart
from stream_jobs.journeys.stats_job import Member
from stream_jobs.passages import Sighting
from stream_jobs.tracking import ChargeTerms, PlateHistory, SentCharge, SentJourney


def through_the_changelog(data: dict) -> dict:
    return orjson.loads(orjson.dumps(data))


def test_a_plate_entry_saved_before_the_typed_records_loads_and_saves_as_it_was():
    saved = {"sightings": [[1000, "A", "r1"], [61000, "B", "r2", 62000]],
             "journeys": {"j1": [61000, "A-B", "r1", "r2", 1]},
             "charges": {"c1": [2, "r1|1|car|charged|15.00|GBP", 1000], "c2": [1, "", 1000]}}
    history = PlateHistory.from_json(saved)
    assert history.sightings[1] == Sighting(61000, "B", "r2", 62000)
    assert history.journeys == {"j1": SentJourney(61000, "A-B", "r1", "r2", withdrawn=True)}
    assert history.charges["c1"] == SentCharge(2, ChargeTerms("r1", 1, "car", "charged", "15.00", "GBP", ""), 1000)
    assert history.charges["c2"] == SentCharge(1, None, 1000)  # after an erasure: the next charge is a new version
    again = PlateHistory.from_json(through_the_changelog(history.to_json()))
    assert again == history
    assert through_the_changelog(history.to_json())["journeys"] == saved["journeys"]


def test_a_partitions_day_ledger_round_trips_with_its_zone_dates():
    part = ZoneDayPart(zone_id="zone-a", charge_date=date(2026, 11, 23), partition=1, charges=2,
                       total_amount=Decimal("30.00"))
    ledger = DayLedger({("zone-a", date(2026, 11, 24)): {"c1": Decimal("15.00")}},
                       {("zone-a", date(2026, 11, 23)): SentPart("r9", part)})
    saved = through_the_changelog(ledger.to_json())
    assert saved["open"] == {"zone-a|2026-11-24": {"c1": "15.00"}}
    loaded = DayLedger.from_json(saved)
    assert (loaded.open, loaded.sent) == (ledger.open, ledger.sent)
    assert loaded.sent_by("r9") == [part]


def test_an_interval_member_keeps_the_list_form_of_the_changelog():
    member = Member(120.0, 30.0, False, '{"v":1}')
    assert member.to_json() == [120.0, 30.0, False, '{"v":1}', 0]
    assert Member.from_json([120.0, 30.0, True, '{"v":1}', 1]) == Member(120.0, 30.0, True, '{"v":1}', withdrawn=True)
    assert Member.from_json([120.0, 30.0, False, '{"v":1}']) == member  # saved before withdrawals were kept
