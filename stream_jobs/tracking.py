"""The per-plate rules: de-duplication, lateness, journeys and zone charges, without any I/O.

One plate's history lives in one partition (the partition of ``plate_reads`` its reads are keyed
to), so it is owned by one worker at a time. Each new read is added to the plate's sightings and
the journeys and charges are recomputed from the whole set; what has not been emitted before
(journey ids, changed charges) is returned for sending. Emission is idempotent by construction:
stable ids, and charges carry a rising version.

Event time rules: each partition keeps a watermark (the latest read time seen); a read older than
the watermark minus ``allowed_lateness_s`` is late, goes to ``late_reads`` and changes nothing.
When the watermark passes a charging day's end plus that lateness, the partition's share of the
day is sent (:mod:`stream_jobs.charges.days`).

The wiring (Kafka, the changelog that makes this state survive a crash) is in
:mod:`stream_jobs.plate_job`; keeping it out of here lets the rules be tested on plain lists of
reads in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client import Counter

from gantry import topics
from gantry.config import GantryConfig, Segment, Zone
from gantry.events import PlateRead, ZoneDayPart, encode
from stream_jobs.charges.days import DayLedger
from stream_jobs.charges.registers import ChargeRegisters
from stream_jobs.charges.rules import NO_REGISTERS, DayCharge, charge_id, day_charges, local_day, zone_charge
from stream_jobs.journeys.rules import Trip, interval_key, trips
from stream_jobs.passages import Passage, Sighting, passages

LATE_READS = Counter("gantry_late_reads", "Reads later than allowed_lateness_s, sent to late_reads")
DUPLICATE_READS = Counter("gantry_duplicate_reads", "Reads delivered again with a known read_id")
MERGED_READS = Counter("gantry_merged_reads", "Reads inside a passage already kept (another look, or a duplicate)")
CHARGING_DAY_MS = 26 * 3_600_000  # a local day, with room for a daylight-saving change
SWEEP_EVERY_MS = 3_600_000  # how often (in event time) plates not seen within the horizon are dropped


class Output(NamedTuple):
    topic: str
    key: bytes
    value: bytes


class SentJourney(NamedTuple):
    """A journey the job has sent, as it last said it: enough to know it again by its reads, to
    withdraw it, and to let it go once it leaves the horizon."""

    end_ms: int
    segment_id: str
    from_read_id: str
    to_read_id: str
    withdrawn: bool = False

    @property
    def read_ids(self) -> tuple[str, str]:
        return self.from_read_id, self.to_read_id


class ChargeTerms(NamedTuple):
    """Everything a charge says beyond its id (a read id stands for the read's time and camera):
    a charge whose terms are unchanged is not sent again."""

    first_read_id: str
    reads: int
    vehicle_class: str
    status: str
    amount: str
    currency: str
    class_source: str


class SentCharge(NamedTuple):
    """The last version of a charge the job sent, what it said (None: not known, after an
    erasure: the next charge is a new version), and its first read's time (for the horizon)."""

    version: int
    terms: ChargeTerms | None
    first_ms: int


@dataclass
class PlateHistory:
    """What a plate's entry keeps: its sightings within the horizon, the journeys already sent
    (by journey_id) and the last charge versions sent (by charge_id)."""

    sightings: list[Sighting] = field(default_factory=list)
    journeys: dict[str, SentJourney] = field(default_factory=dict)
    charges: dict[str, SentCharge] = field(default_factory=dict)

    def to_json(self) -> dict:
        """As lists, in the changelog: ``[end_ms, segment_id, from, to, 0|1]`` per journey and
        ``[version, [terms...] | "", first_ms]`` per charge."""
        return {
            "sightings": [s.to_json() for s in self.sightings],
            "journeys": {j: [sent.end_ms, sent.segment_id, sent.from_read_id, sent.to_read_id, int(sent.withdrawn)]
                         for j, sent in self.journeys.items()},
            "charges": {c: [sent.version, list(sent.terms) if sent.terms else "", sent.first_ms]
                        for c, sent in self.charges.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> PlateHistory:
        return cls(
            [Sighting.from_json(s) for s in data["sightings"]],
            {j: SentJourney(int(e), str(s), str(f), str(t), bool(w)) for j, (e, s, f, t, w) in data["journeys"].items()},
            {c: SentCharge(int(v), _terms(terms), int(first)) for c, (v, terms, first) in data["charges"].items()},
        )


def _terms(saved: list | str) -> ChargeTerms | None:
    """A charge's saved terms; a state saved before they were a list held them ``|``-joined, without
    the class source (such a charge, made again, is sent as a new version once)."""
    if not saved:
        return None
    fields = saved.split("|") if isinstance(saved, str) else saved
    fields = [*fields, ""][: len(ChargeTerms._fields)]
    return ChargeTerms(str(fields[0]), int(fields[1]), *map(str, fields[2:]))


@dataclass
class PartitionState:
    """The plates of one partition, its watermark, its charges per zone-day, and the plates
    changed or dropped since the last save."""

    partition: int = 0
    plates: dict[str, PlateHistory] = field(default_factory=dict)
    watermark: int = 0
    days: DayLedger = field(default_factory=DayLedger)
    changed: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)
    swept_at: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # topic -> the next offset not yet taken in


def forget(state: PartitionState, plate: str, erased_at_ms: int) -> None:
    """What an erasure leaves of a plate's entry: the sightings from after it, the journeys
    between those, and the charge versions (so that a charge made again goes on from the last
    version sent); with no sighting after it, nothing (the entry is deleted). The erased charges
    leave the partition's open days, as they left the warehouse."""
    history = state.plates.get(plate)
    if history is None:
        return
    state.days.withdraw(history.charges)
    kept = [s for s in history.sightings if s.ts_ms >= erased_at_ms]
    if not kept:
        del state.plates[plate]
        state.changed.discard(plate)
        state.dropped.add(plate)
        return
    ids = {s.read_id for s in kept}
    journeys = {j: sent for j, sent in history.journeys.items() if sent.from_read_id in ids and sent.to_read_id in ids}
    charges = {c: sent._replace(terms=None) for c, sent in history.charges.items()}
    state.plates[plate] = PlateHistory(kept, journeys, charges)
    state.changed.add(plate)


class Tracker:
    """The per-plate step, configured once from the cameras, segments and zones."""

    def __init__(self, config: GantryConfig, registers: ChargeRegisters = NO_REGISTERS) -> None:
        settings = config.stream_jobs
        self.registers = registers  # vehicle classes and concessions, kept current by their feeds
        self.dedup_window_s = settings.dedup_window_s
        self.stats_interval_s = settings.stats_interval_s
        self.lateness_ms = int(settings.allowed_lateness_s * 1000)
        longest_trip_ms = int(max([s.max_travel_s for s in config.segments], default=0) * 1000)
        self.horizon_ms = max(longest_trip_ms, CHARGING_DAY_MS) + self.lateness_ms + int(settings.dedup_window_s * 1000)
        self.key = config.privacy.pseudonym_key().get_secret_value() if config.segments else ""
        self.segments_at = {c.id: [s for s in config.segments if c.id in (s.from_camera, s.to_camera)] for c in config.cameras}
        self.zones_at = {c.id: [z for z in config.zones if c.id in z.cameras] for c in config.cameras}
        self.zones = list(config.zones)

    def track(self, read: PlateRead, raw: bytes, state: PartitionState, *, seen: bool = False) -> list[Output]:
        """What this read makes the job send, updating ``state`` (unless the read is late or a replay).

        ``seen``: the read's offset is one this state has taken in before (the batch is read
        again after a crash). That tells a replay from a new read where the read id alone
        cannot: a read merged into a run leaves no id behind.
        """
        sighting = Sighting(int(read.ts.timestamp() * 1000), read.camera_id, read.read_id, 0, read.image_ref or "",
                            read.vehicle_class or "")
        history = state.plates.get(read.plate) or PlateHistory()
        # A read seen before is replayed after a crash, or delivered twice: it changes nothing,
        # but what it produced is sent again, in case the crash lost it (same ids, same versions).
        # A read inside a run (a car's passage, its reads merged) changes nothing: it is another
        # look during the passage, or a delivery again of a read merged into it, which the read
        # id can no longer tell (``seen`` can, after a crash).
        ts_ms, camera_id = sighting.ts_ms, sighting.camera_id  # inlined: this runs over every sighting of every read
        covered = any(s.ts_ms <= ts_ms <= s.last_ms and s.camera_id == camera_id for s in history.sightings)
        replay = seen and covered or any(s.read_id == read.read_id for s in history.sightings)
        watermark = state.watermark
        if replay:
            DUPLICATE_READS.inc()
            known = history.sightings
        elif covered:
            MERGED_READS.inc()
            return []
        elif sighting.ts_ms < watermark - self.lateness_ms:
            LATE_READS.inc()
            return [Output(topics.LATE_READS, read.plate.encode(), raw)]
        else:
            watermark = max(watermark, sighting.ts_ms)
            oldest = watermark - self.horizon_ms  # a run is kept while its latest read is within the horizon
            known = [s for s in history.sightings if s.ts_ms >= oldest or s.last_ms >= oldest] + [sighting]
        horizon = watermark - self.horizon_ms
        plate_passages = passages(known, self.dedup_window_s)
        sent_journeys = {j: sent for j, sent in history.journeys.items() if sent.end_ms >= horizon}
        # The plate's latest read only adds trips; one that arrives out of order may move a passage.
        in_order = not replay and all(s.ts_ms < ts_ms and s.last_ms < ts_ms for s in history.sightings)
        outputs = []
        for segment in self.segments_at.get(read.camera_id, ()):
            # Trips are known by their reads: their ids (a hash) are only worked out to be sent.
            current = {trip.read_ids: trip for trip in trips(plate_passages, segment)}
            withdrawn = {sent.read_ids: sent.withdrawn for sent in sent_journeys.values() if sent.segment_id == segment.id}
            for read_ids, trip in current.items():
                unsent_or_withdrawn = withdrawn.get(read_ids, True)
                if unsent_or_withdrawn or (replay and read.read_id in read_ids):
                    outputs.append(self._journey_output(trip, read.plate))
                    sent_journeys[trip.journey_id] = SentJourney(trip.end.ts_ms, segment.id, *read_ids)
            if not in_order:
                outputs += self._withdrawals(segment, current, sent_journeys, known, read.plate, again=replay)
        versions = {c: sent for c, sent in history.charges.items() if sent.first_ms >= horizon}
        for zone in self.zones_at.get(read.camera_id, ()):
            day = local_day(read.ts, zone.tariff)
            owed = day_charges(read.plate, plate_passages, zone, only=day, registers=self.registers).get(day)
            if owed is not None:
                outputs += _charge_outputs(read.plate, zone, owed, versions, state.days, again=replay)
        if replay:
            return outputs + [_part_output(p) for p in state.days.sent_by(read.read_id)]
        state.plates[read.plate] = PlateHistory([p.first for p in plate_passages], sent_journeys, versions)
        state.changed.add(read.plate)
        state.dropped.discard(read.plate)  # dropped earlier in the batch (erased, swept), and back
        parts = state.days.advance(self.zones, state.partition, state.watermark, watermark, self.lateness_ms, read.read_id)
        state.watermark = watermark
        if watermark - state.swept_at >= SWEEP_EVERY_MS:
            self._sweep(state)
        return outputs + [_part_output(p) for p in parts]

    def _journey_output(self, trip: Trip, plate: str, withdrawn: bool = False) -> Output:
        journey = trip.journey(plate, self.key)
        if withdrawn:
            journey = journey.model_copy(update={"withdrawn": True})
        return Output(topics.JOURNEYS, interval_key(trip.segment.id, trip.end.ts_ms, self.stats_interval_s).encode(),
                      encode(journey))

    def _withdrawals(self, segment: Segment, current: dict[tuple[str, str], Trip], sent_journeys: dict[str, SentJourney],
                     sightings: list[Sighting], plate: str, *, again: bool) -> list[Output]:
        """Journeys sent on this segment that the plate's passages no longer make, sent again
        marked ``withdrawn``; with ``again``, those withdrawn before are sent again too.

        Out of order, a camera's second look at a car can arrive before its first: the passage,
        represented by its earliest read, then starts later than it will, and a journey is sent
        under the second look's read_id. When the first look arrives, the passage moves, the
        journey gets another id and travel time, and the one sent before must not stay counted.
        A journey whose reads have left the horizon is kept: nothing can change it any more.
        """
        gone = [(journey_id, sent) for journey_id, sent in sent_journeys.items()
                if sent.segment_id == segment.id and sent.read_ids not in current and (again or not sent.withdrawn)]
        if not gone:
            return []
        by_read = {s.read_id: s for s in sightings}
        outputs = []
        for journey_id, sent in gone:
            if sent.from_read_id in by_read and sent.to_read_id in by_read:
                trip = Trip(segment, Passage(by_read[sent.from_read_id], 1), Passage(by_read[sent.to_read_id], 1))
                outputs.append(self._journey_output(trip, plate, withdrawn=True))
                sent_journeys[journey_id] = sent._replace(withdrawn=True)
        return outputs

    def _sweep(self, state: PartitionState) -> None:
        """Drop the plates with no sighting within the horizon: nothing they hold can matter again
        (a read that would pair with them is late), and a city sees millions of plates a day."""
        horizon = state.watermark - self.horizon_ms
        for plate in [p for p, h in state.plates.items() if max(s.end_ms for s in h.sightings) < horizon]:
            del state.plates[plate]
            state.changed.discard(plate)
            state.dropped.add(plate)
        state.swept_at = state.watermark


NOT_SENT = SentCharge(0, None, 0)


def _part_output(part: ZoneDayPart) -> Output:
    return Output(topics.ZONE_DAY_PARTS, part.zone_id.encode(), encode(part))


def _charge_outputs(plate: str, zone: Zone, owed: DayCharge, versions: dict[str, SentCharge], days: DayLedger, *,
                    again: bool) -> list[Output]:
    """The charge when it differs from the last version sent, with the next version number (and
    in the day's ledger); with ``again`` (a replay), an unchanged charge is sent again under its
    current version."""
    charge_key = charge_id(zone.id, plate, owed.day)
    terms = ChargeTerms(owed.first.first.read_id, owed.reads, owed.vehicle_class, owed.status, str(owed.amount),
                        zone.tariff.currency, owed.class_source)
    last = versions.get(charge_key, NOT_SENT)
    version = last.version
    if terms == last.terms:
        if not again:
            return []
    else:
        version += 1
        versions[charge_key] = SentCharge(version, terms, owed.first.ts_ms)
    charge = zone_charge(plate, zone, owed, version)
    if not again:
        days.record(charge)
    return [Output(topics.ZONE_CHARGES, charge.zone_id.encode(), encode(charge))]
