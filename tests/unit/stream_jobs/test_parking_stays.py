"""The parking job's per-plate state, driven by the simulated car park without a broker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from gantry.site_events import ParkingSession
from gantry.sites import Site
from sites.pairing import Passage
from stream_jobs.parking.job import passage_of
from stream_jobs.parking.simulator import PARK_ID, START, ExpectedStay, GateFaults, simulate, site
from stream_jobs.parking.stays import PlateStays, update

SITE = Site.model_validate(site())
PARK = SITE.car_park(PARK_ID)
FREE = SITE.free_lists()
LATENESS = timedelta(seconds=300)


def run(decisions, states=None) -> dict[str, ParkingSession]:
    """The decisions through the job's state, in delivery order: the last session sent per id."""
    states = {} if states is None else states
    watermark = START
    latest: dict[str, ParkingSession] = {}
    for decision in decisions:
        passage = passage_of(decision)
        if passage is None or passage.ts < watermark - LATENESS:
            continue
        stays = states.setdefault(decision.plate, PlateStays())
        if any(p.read_id == passage.read_id for p in stays.passages):
            continue
        stays.passages.append(passage)
        watermark = max(watermark, passage.ts)
        for session in update(stays, decision.plate, PARK, FREE, now=watermark, dedup_s=10, horizon=watermark - LATENESS):
            assert session.version > latest.get(session.session_id, session.model_copy(update={"version": 0})).version
            latest[session.session_id] = session
    return latest


def outcome(latest: dict[str, ParkingSession]) -> set[ExpectedStay]:
    return {ExpectedStay(s.plate, s.status, s.entry_read_id, s.exit_read_id, str(s.fee))
            for s in latest.values() if not s.withdrawn}


@pytest.mark.parametrize("faults", [
    GateFaults(),
    GateFaults(missed_entries=0.1, missed_exits=0.1),
    GateFaults(missed_entries=0.05, missed_exits=0.05, duplicates=0.1, second_looks=0.2, disorder_s=120),
], ids=["clean", "missed-reads", "everything"])
def test_the_simulated_car_park_gives_exactly_the_expected_stays_and_fees(faults):
    simulation = simulate(300, faults)
    latest = run(simulation.decisions)
    assert outcome(latest) == simulation.expected
    closed_overstays = {s.entry_read_id for s in latest.values() if s.overstay and s.status == "closed" and not s.withdrawn}
    assert closed_overstays == simulation.overstays


def test_a_state_saved_and_restored_mid_stream_gives_the_same_stays():
    simulation = simulate(120, GateFaults(missed_entries=0.05, missed_exits=0.05, second_looks=0.2, disorder_s=60))
    half = len(simulation.decisions) // 2
    states: dict[str, PlateStays] = {}
    first = run(simulation.decisions[:half], states)
    restored = {plate: PlateStays.from_json(s.to_json()) for plate, s in states.items()}
    # the watermark restarts from the last decision of the first half, as from the changelog
    second = run(simulation.decisions[half - 20:], restored)  # and the last 20 again, as after a crash
    assert outcome(first | second) == simulation.expected


def test_a_late_entry_withdraws_the_missed_entry_stay_it_replaces():
    stays = PlateStays()
    t = START + timedelta(hours=3)
    stays.passages.append(Passage(t, "out", "exit"))
    (missed,) = update(stays, "AB1", PARK, FREE, now=t, dedup_s=10, horizon=t - LATENESS)
    stays.passages.append(Passage(t - timedelta(hours=2), "in", "entry"))
    withdrawn, closed = update(stays, "AB1", PARK, FREE, now=t, dedup_s=10, horizon=t - LATENESS)
    assert (missed.status, missed.fee) == ("entry_missed", Decimal("25.00"))
    assert (withdrawn.session_id, withdrawn.withdrawn, withdrawn.version) == (missed.session_id, True, 2)
    assert (closed.status, closed.fee, closed.version, closed.withdrawn) == ("closed", Decimal("3.00"), 1, False)


def test_an_unchanged_stay_is_not_sent_again_and_old_stays_are_forgotten():
    stays = PlateStays()
    t = START
    stays.passages += [Passage(t, "in1", "entry"), Passage(t + timedelta(hours=1), "out1", "exit")]
    assert len(update(stays, "AB1", PARK, FREE, now=t, dedup_s=10, horizon=t - LATENESS)) == 1
    assert update(stays, "AB1", PARK, FREE, now=t, dedup_s=10, horizon=t - LATENESS) == []
    later = t + timedelta(days=1)
    stays.passages.append(Passage(later, "in2", "entry"))
    (opened,) = update(stays, "AB1", PARK, FREE, now=later, dedup_s=10, horizon=later - LATENESS)
    assert opened.status == "open" and [p.read_id for p in stays.passages] == ["in2"]
    assert list(stays.sent) == [opened.session_id]
    assert stays.open_since() == later


def test_an_open_stay_becomes_an_overstay_as_time_passes():
    stays = PlateStays()
    stays.passages.append(Passage(START, "in", "entry"))
    (fresh,) = update(stays, "AB1", PARK, FREE, now=START, dedup_s=10, horizon=START)
    much_later = START + timedelta(hours=25)
    (flagged,) = update(stays, "AB1", PARK, FREE, now=much_later, dedup_s=10, horizon=much_later - LATENESS)
    assert (fresh.overstay, flagged.overstay, flagged.version, flagged.session_id) == (False, True, 2, fresh.session_id)
