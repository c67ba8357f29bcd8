"""The per-plate rules against the simulator's answers, without a broker: any delivery order,
duplicates, a replay of already-tracked reads, and the state dropped by a sweep."""

import random
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import Journey, PlateRead, RegisteredVehicle, ZoneCharge, ZoneDayPart, decode, encode
from stream_jobs.charges.registers import ChargeRegisters
from stream_jobs.simulator import Noise, simulate
from stream_jobs.tracking import PartitionState, PlateHistory, Tracker, forget

PARTITIONS = 4


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("GANTRY_PSEUDONYM_KEY", "unit-test-key")


def run(sim, reads: list[PlateRead], config: GantryConfig) -> list:
    """Every output of the tracker for these reads, with plates spread over partitions like Kafka."""
    tracker = Tracker(config)
    states = [PartitionState(partition=p) for p in range(PARTITIONS)]
    outputs = []
    for read in reads:
        state = states[zlib.crc32(read.plate.encode()) % PARTITIONS]
        outputs += tracker.track(read, encode(read), state)
    return outputs


def latest_journeys(outputs: list) -> dict[str, Journey]:
    """Each journey's last message, as the warehouse keeps it."""
    return {j.journey_id: j for j in (decode(Journey, o.value) for o in outputs if o.topic == topics.JOURNEYS)}


def answers(outputs: list) -> tuple[set, dict, set]:
    journeys = {(j.segment_id, j.from_read_id, j.to_read_id, j.travel_s)
                for j in latest_journeys(outputs).values() if not j.withdrawn}
    latest: dict[str, ZoneCharge] = {}
    for charge in (decode(ZoneCharge, o.value) for o in outputs if o.topic == topics.ZONE_CHARGES):
        if charge.charge_id not in latest or latest[charge.charge_id].version < charge.version:
            latest[charge.charge_id] = charge
    charges = {(c.zone_id, c.plate, c.charge_date.isoformat()): (c.first_read_id, c.read_count, str(c.amount))
               for c in latest.values()}
    late = {decode(PlateRead, o.value).read_id for o in outputs if o.topic == topics.LATE_READS}
    return journeys, charges, late


def started_after_an_early_second_look(sim) -> set[tuple]:
    """The expected journeys whose from-camera's second look was delivered before its first look,
    which came before the to-camera read (issue 18)."""
    delivered = {r.read_id: i for i, r in reversed(list(enumerate(sim.reads)))}  # first delivery
    by_id = {r.read_id: r for r in sim.reads}
    looks: dict[tuple[str, str], list[PlateRead]] = {}
    for r in by_id.values():
        looks.setdefault((r.plate, r.camera_id), []).append(r)
    found = set()
    for journey in sim.expected.journeys:
        _, from_read_id, to_read_id, _ = journey
        first = by_id[from_read_id]
        seconds_first = [r for r in looks[first.plate, first.camera_id]
                         if timedelta(0) < r.ts - first.ts < timedelta(seconds=4)
                         and delivered[r.read_id] < delivered[from_read_id]]
        if seconds_first and delivered[from_read_id] < delivered[to_read_id]:
            found.add(journey)
    return found


def city_config(sim) -> GantryConfig:
    return GantryConfig.model_validate(sim.city | {"stream_jobs": {"allowed_lateness_s": 600}})


def test_noisy_delivery_gives_the_simulators_answers():
    sim = simulate(cameras=6, vehicles=300, hours=3, seed=11,
                   noise=Noise(duplicates=0.05, extra_reads=0.1, disorder_s=120, misreads=0.03, late=3))
    journeys, charges, late = answers(run(sim, sim.reads, city_config(sim)))
    assert journeys == sim.expected.journeys
    assert charges == sim.expected.charges
    assert late == sim.expected.late_reads


def test_a_second_look_delivered_before_the_first_withdraws_the_journey_it_started():
    sim = simulate(cameras=6, vehicles=300, hours=3, seed=7,
                   noise=Noise(extra_reads=0.3, early_second_looks=1.0, disorder_s=60))
    outputs = run(sim, sim.reads, city_config(sim))
    withdrawn = [j for j in latest_journeys(outputs).values() if j.withdrawn]
    assert withdrawn  # the case arose: journeys were sent under a second look, then replaced
    assert not {(j.segment_id, j.from_read_id, j.to_read_id, j.travel_s) for j in withdrawn} & sim.expected.journeys
    assert started_after_an_early_second_look(sim)  # and journeys left a camera whose second look came first
    journeys, charges, _ = answers(outputs)
    assert journeys == sim.expected.journeys
    assert charges == sim.expected.charges


@pytest.mark.parametrize("order, sent", [
    ("a b2 b1 c", [("A-B", "a", "b2", False), ("A-B", "a", "b1", False), ("A-B", "a", "b2", True),
                   ("B-C", "b1", "c", False)]),
    ("a b2 c b1", [("A-B", "a", "b2", False), ("B-C", "b2", "c", False), ("A-B", "a", "b1", False),
                   ("A-B", "a", "b2", True), ("B-C", "b1", "c", False), ("B-C", "b2", "c", True)]),
])
def test_a_second_look_delivered_first_at_a_camera_between_two_segments(order, sent):
    """Issue 18: a car passes A, B and C; B reads it twice, 2 s apart (b1, b2), and b2 arrives
    first. Both journeys end up under the first look, each sent once, a withdrawal where one was
    sent under b2."""
    config = GantryConfig.model_validate({
        "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in "ABC"],
        "segments": [{"id": f"{a}-{b}", "from_camera": a, "to_camera": b, "distance_m": 1000}
                     for a, b in ("AB", "BC")],
    })
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    at = {"a": ("A", 0), "b1": ("B", 100), "b2": ("B", 102), "c": ("C", 200)}
    tracker, state, journeys = Tracker(config), PartitionState(), []
    for read_id in order.split():
        camera, offset_s = at[read_id]
        read = PlateRead(read_id=read_id, camera_id=camera, ts=start + timedelta(seconds=offset_s),
                         plate="AB12CDE", confidence=0.9)
        outputs = tracker.track(read, encode(read), state)
        journeys += [decode(Journey, o.value) for o in outputs if o.topic == topics.JOURNEYS]
    assert [(j.segment_id, j.from_read_id, j.to_read_id, j.withdrawn) for j in journeys] == sent


def test_replaying_tracked_reads_resends_the_same_outputs_and_changes_nothing():
    sim = simulate(cameras=6, vehicles=100, hours=2, seed=5)
    config = city_config(sim)
    once = run(sim, sim.reads, config)
    half = len(sim.reads) // 2
    twice = run(sim, sim.reads + sim.reads[half:], config)  # a crash before the second half's commit
    assert answers(twice) == answers(once)
    assert {o.value for o in twice} == {o.value for o in once}  # same ids, same charge versions


def test_a_sweep_drops_plates_beyond_the_horizon_only():
    sim = simulate(cameras=6, vehicles=50, hours=1, seed=2)
    tracker, state = Tracker(city_config(sim)), PartitionState()
    for read in sim.reads:
        tracker.track(read, encode(read), state)
    seen = set(state.plates)
    first, last, horizon = min(r.ts for r in sim.reads), max(r.ts for r in sim.reads), timedelta(milliseconds=tracker.horizon_ms)
    just_inside = sim.reads[0].model_copy(update={"read_id": "r1", "plate": "NEW1", "ts": first + horizon})
    tracker.track(just_inside, encode(just_inside), state)
    assert seen < set(state.plates) and not state.dropped  # every sim read is still within reach
    beyond = just_inside.model_copy(update={"read_id": "r2", "plate": "NEW2", "ts": last + horizon + timedelta(hours=1)})
    tracker.track(beyond, encode(beyond), state)
    assert set(state.plates) == {"NEW1", "NEW2"}
    assert state.dropped == seen


def test_reads_are_tracked_in_any_order():
    sim = simulate(cameras=6, vehicles=150, hours=2, seed=9)
    shuffled = sim.reads[:]
    random.Random(1).shuffle(shuffled)
    config = GantryConfig.model_validate(sim.city | {"stream_jobs": {"allowed_lateness_s": 3 * 3600}})
    journeys, charges, late = answers(run(sim, shuffled, config))
    assert (journeys, charges, late) == (sim.expected.journeys, sim.expected.charges, set())


def test_each_partition_sends_its_share_of_a_day_once_past_it():
    evening = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday afternoon to Tuesday morning
    sim = simulate(cameras=6, vehicles=120, hours=20, seed=11, start=evening, noise=Noise(duplicates=0.05))
    outputs = run(sim, sim.reads, city_config(sim))
    parts = [decode(ZoneDayPart, o.value) for o in outputs if o.topic == topics.ZONE_DAY_PARTS]
    monday = [Decimal(amount) for (_, _, day), (_, _, amount) in sim.expected.charges.items() if day == "2026-11-30"]
    shares = {p.partition: (p.charges, p.total_amount) for p in parts if p.charge_date == date(2026, 11, 30)}
    assert sorted(shares) == list(range(PARTITIONS))  # every partition, once
    assert sum(c for c, _ in shares.values()) == len(monday)
    assert sum(t for _, t in shares.values()) == sum(monday)
    assert not [p for p in parts if p.charge_date == date(2026, 12, 1)]  # Tuesday is still open


def spam_config() -> GantryConfig:
    return GantryConfig.model_validate({
        "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in ("A", "B")],
        "segments": [{"id": "A-B", "from_camera": "A", "to_camera": "B", "distance_m": 1000}],
        "zones": [{"id": "zone-a", "cameras": ["A"]}],
    })


def spam(plate: str, count: int, start: datetime) -> list[PlateRead]:
    """``count`` reads of one plate at camera A within seconds (a stuck camera, or a spammer)."""
    return [PlateRead(read_id=f"spam-{n}", camera_id="A", ts=start + timedelta(milliseconds=n * 2), plate=plate,
                      confidence=0.9) for n in range(count)]


def test_thousands_of_reads_of_one_passage_keep_one_sighting_and_exact_answers():
    tracker, state, outputs = Tracker(spam_config()), PartitionState(), []
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday, in charging hours
    reads = spam("SP4MME", 5000, start)
    shuffled = reads[:]
    random.Random(3).shuffle(shuffled)
    to_b = PlateRead(read_id="at-b", camera_id="B", ts=start + timedelta(minutes=2), plate="SP4MME", confidence=0.9)
    for read in shuffled + [to_b]:
        outputs += tracker.track(read, encode(read), state)
    assert len(state.plates["SP4MME"].sightings) == 2  # one run at A, one read at B
    journeys, charges, _ = answers(outputs)
    assert journeys == {("A-B", "spam-0", "at-b", 120.0)}
    assert charges == {("zone-a", "SP4MME", "2026-11-24"): ("spam-0", 1, "15.00")}


def test_a_merged_read_read_again_after_a_crash_sends_its_charge_again_and_a_new_one_nothing():
    tracker, state = Tracker(spam_config()), PartitionState()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    first, middle, last = spam("SP4MME", 3, start)
    for read in (first, last, middle):
        tracker.track(read, encode(read), state)
    assert len(state.plates["SP4MME"].sightings) == 1  # middle is merged: its id is gone
    again = tracker.track(middle, encode(middle), state, seen=True)  # its offset was taken in before
    assert [decode(ZoneCharge, o.value).version for o in again if o.topic == topics.ZONE_CHARGES] == [1]
    another_look = middle.model_copy(update={"read_id": "spam-new"})
    assert tracker.track(another_look, encode(another_look), state) == []


def test_an_erasure_leaves_the_sightings_after_it_and_the_charge_goes_on_from_its_last_version():
    tracker, state = Tracker(spam_config()), PartitionState()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    before = PlateRead(read_id="before", camera_id="A", ts=start, plate="ER45ASE", confidence=0.9)
    after = before.model_copy(update={"read_id": "after", "ts": start + timedelta(hours=1)})
    for read in (before, after):
        tracker.track(read, encode(read), state)
    forget(state, "ER45ASE", int((start + timedelta(minutes=30)).timestamp() * 1000))
    assert [s.read_id for s in state.plates["ER45ASE"].sightings] == ["after"]
    assert not any(state.days.open.values())  # the erased charge left the day's running total
    later = before.model_copy(update={"read_id": "later", "ts": start + timedelta(hours=2)})
    [charge] = [decode(ZoneCharge, o.value) for o in tracker.track(later, encode(later), state)
                if o.topic == topics.ZONE_CHARGES]
    assert (charge.first_read_id, charge.read_count, charge.version) == ("after", 2, 3)
    forget(state, "ER45ASE", int((start + timedelta(hours=3)).timestamp() * 1000))
    assert "ER45ASE" not in state.plates and "ER45ASE" in state.dropped


def test_a_charge_carries_the_picture_of_its_first_read_through_a_restart():
    """The evidence follows the charge's first read: kept in the plate's saved state, and
    replaced when an earlier read becomes the first."""
    tracker, state = Tracker(spam_config()), PartitionState()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def pictured(read_id: str, ts: datetime) -> PlateRead:
        return PlateRead(read_id=read_id, camera_id="A", ts=ts, plate="EV1DENC", confidence=0.9,
                         image_ref=f"file:///snapshots/2026-11-24/A/{read_id}-overview.jpg")

    def charges(read: PlateRead) -> list[ZoneCharge]:
        return [decode(ZoneCharge, o.value) for o in tracker.track(read, encode(read), state)
                if o.topic == topics.ZONE_CHARGES]

    [first] = charges(pictured("second", start + timedelta(minutes=2)))
    assert first.image_ref.endswith("/second-overview.jpg")
    saved = state.plates["EV1DENC"].to_json()
    state.plates["EV1DENC"] = PlateHistory.from_json(saved)  # as a restarted worker loads it
    assert state.plates["EV1DENC"].sightings[0].image_ref == first.image_ref
    [earlier] = charges(pictured("first", start))
    assert (earlier.first_read_id, earlier.version) == ("first", 2)
    assert earlier.image_ref.endswith("/first-overview.jpg")
    unpictured = PlateRead(read_id="old", camera_id="A", ts=start - timedelta(minutes=1), plate="EV1DENC",
                           confidence=0.9)
    [charge] = charges(unpictured)
    assert charge.image_ref is None


def test_the_per_plate_job_prices_the_registered_class_before_the_cameras_and_keeps_it_through_a_restart():
    """A class that reaches the register later applies from the plate's next read that day (a new
    version); the camera's report stays in the saved state for the days the register does not cover."""
    config = GantryConfig.model_validate({
        "cameras": [{"id": "A", "lat": 51.5, "lon": -0.1}],
        "zones": [{"id": "zone-a", "cameras": ["A"], "tariff": {
            "daily_charge": {"car": "10.00", "lorry": "30.00", "van": "12.00"}, "camera_classes": {"truck": "lorry"}}}],
    })
    registers = ChargeRegisters()
    tracker, state = Tracker(config, registers), PartitionState()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def charges(read_id: str, minutes: int, vehicle_class: str | None = None) -> list[ZoneCharge]:
        read = PlateRead(read_id=read_id, camera_id="A", ts=start + timedelta(minutes=minutes), plate="CL45SES",
                         confidence=0.9, vehicle_class=vehicle_class)
        return [decode(ZoneCharge, o.value) for o in tracker.track(read, encode(read), state)
                if o.topic == topics.ZONE_CHARGES]

    [reported] = charges("truck-look", 0, "truck")
    assert (reported.vehicle_class, reported.vehicle_class_source, reported.amount) == ("lorry", "camera", Decimal("30.00"))
    state.plates["CL45SES"] = PlateHistory.from_json(state.plates["CL45SES"].to_json())  # as a restarted worker loads it
    [again] = charges("later", 30)  # another passage, unclassified: the camera's class is kept in the state
    assert (again.read_count, again.vehicle_class, again.vehicle_class_source) == (2, "lorry", "camera")
    registers.vehicles.put(RegisteredVehicle(plate="CL45SES", vehicle_class="van"))
    [registered] = charges("register-known", 60)
    assert (registered.vehicle_class, registered.vehicle_class_source, registered.amount) == ("van", "register", Decimal("12.00"))
    assert registered.first_read_id == "truck-look" and registered.version == 3
