"""The per-plate job: de-duplication, lateness, journeys and zone charges.

One plate's history lives in one partition of the ``plates`` table, and therefore on one worker
(:mod:`stream_jobs.intake` makes sure the read reaches that partition). Each new read is added to
the plate's sightings and the journeys and charges are recomputed from the whole set; what has
not been emitted before (journey ids, changed charges) is sent. Emission is idempotent by
construction: stable ids, and charges carry a rising version.

A plate's entry: ``sightings`` ([ts_ms, camera, read_id] within the horizon), ``journeys``
(journey_id -> end ts_ms, already sent) and ``charges`` (charge_id -> [version, fingerprint,
day ts_ms], last sent). The horizon covers the longest trip, a charging day and the lateness.

Event time rules: each partition keeps a watermark (the latest read time seen); a read older than
the watermark minus ``allowed_lateness_s`` is late, goes to ``late_reads`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from faust.types import EventT
from prometheus_client import Counter

from gantry import topics
from gantry.events import PlateRead, ZoneCharge, encode
from gantry.observability import MESSAGES_OUT
from stream_jobs.batching import in_partition_of
from stream_jobs.charges.rules import charges, local_day
from stream_jobs.intake import STAGE
from stream_jobs.journeys.rules import pair
from stream_jobs.passages import Sighting, passages

LATE_READS = Counter("gantry_late_reads", "Reads later than allowed_lateness_s, sent to late_reads")
DUPLICATE_READS = Counter("gantry_duplicate_reads", "Reads delivered again with a known read_id")
CHARGING_DAY_MS = 26 * 3_600_000  # a local day, with room for a daylight-saving change
MARK_STEP_MS = 10_000
TrackedRead = tuple[PlateRead, EventT]  # the read and the event that brought it


def tracker(jobs) -> Callable[[list[TrackedRead]], None]:
    """The per-plate step over a batch of reads, run in the partitions that own their plates (see
    :mod:`stream_jobs.intake`).

    Reads are handled one by one, in arrival order, exactly as if they came singly; only the
    table traffic is batched (see :mod:`stream_jobs.batching`): each plate's entry is read once
    and written once per batch. Outputs are queued with ``send_soon``: Faust flushes the producer
    before it commits the batch's offsets, so nothing is acknowledged unsent.
    """
    app, config = jobs.app, jobs.config
    settings = config.stream_jobs
    lateness_ms = int(settings.allowed_lateness_s * 1000)
    longest_trip_ms = int(max([s.max_travel_s for s in config.segments], default=0) * 1000)
    horizon_ms = max(longest_trip_ms, CHARGING_DAY_MS) + lateness_ms + int(settings.dedup_window_s * 1000)
    key = config.privacy.pseudonym_key().get_secret_value() if config.segments else ""
    segments_at = {c.id: [s for s in config.segments if c.id in (s.from_camera, s.to_camera)] for c in config.cameras}
    zones_at = {c.id: [z for z in config.zones if c.id in z.cameras] for c in config.cameras}

    partitions = config.broker.partitions_for(topics.PLATE_READS)
    plates = app.Table("plates", default=dict, partitions=partitions)
    marks = app.Table("watermarks", default=int, partitions=partitions)
    late, journeys, zone_charges = jobs.topic(topics.LATE_READS), jobs.topic(topics.JOURNEYS), jobs.topic(topics.ZONE_CHARGES)
    live_marks: dict[int, int] = {}

    def track(read: PlateRead, raw: bytes, partition: int, changed: dict[str, dict]) -> None:
        watermark = max(live_marks.get(partition, 0), marks[f"partition:{partition}"])
        sighting = Sighting(int(read.ts.timestamp() * 1000), read.camera_id, read.read_id)
        state = changed[read.plate] if read.plate in changed else plates[read.plate]
        known = [Sighting.from_json(s) for s in state.get("sightings", [])]
        # A read seen before is replayed after a crash, or delivered twice: it changes nothing,
        # but what it produced is sent again, in case the crash lost it (same ids, same versions).
        replay = any(s.read_id == read.read_id for s in known)
        if replay:
            DUPLICATE_READS.inc()
        elif sighting.ts_ms < watermark - lateness_ms:
            LATE_READS.inc()
            late.send_soon(key=read.plate.encode(), value=raw)
            return
        else:
            watermark = max(watermark, sighting.ts_ms)
            known = [s for s in known if s.ts_ms >= watermark - horizon_ms] + [sighting]
        history = passages(known, settings.dedup_window_s)
        sent_journeys = {j: end for j, end in state.get("journeys", {}).items() if end >= watermark - horizon_ms}
        for segment in segments_at.get(read.camera_id, ()):
            for journey in pair(read.plate, history, segment, key):
                ends = (journey.from_read_id, journey.to_read_id)
                if journey.journey_id not in sent_journeys or (replay and read.read_id in ends):
                    journeys.send_soon(key=segment.id.encode(), value=encode(journey))
                    MESSAGES_OUT.labels(STAGE, topics.JOURNEYS).inc()
                    sent_journeys[journey.journey_id] = int(journey.end_ts.timestamp() * 1000)
        versions = {c: v for c, v in state.get("charges", {}).items() if v[2] >= watermark - horizon_ms}
        for zone in zones_at.get(read.camera_id, ()):
            charge = charges(read.plate, history, zone).get(local_day(read.ts, zone.tariff))
            if charge is not None:
                _emit_charge(charge, versions, zone_charges, again=replay)
        if replay:
            return
        changed[read.plate] = {"sightings": [s.to_json() for s in known], "journeys": sent_journeys, "charges": versions}
        live_marks[partition] = watermark

    def track_batch(batch: list[TrackedRead]) -> None:
        changed: dict[str, dict] = {}
        for read, event in batch:
            track(read, event.value, event.message.partition, changed)
        last_event_of = {read.plate: event for read, event in batch}
        for plate, state in changed.items():
            with in_partition_of(last_event_of[plate]):
                plates[plate] = state
        # The watermark is saved in steps: after a restart it may be a few seconds behind, which
        # only makes the job more tolerant of lateness, never less.
        for partition, event in {event.message.partition: event for _, event in batch}.items():
            mark_key = f"partition:{partition}"
            if live_marks.get(partition, 0) - marks[mark_key] >= MARK_STEP_MS:
                with in_partition_of(event):
                    marks[mark_key] = live_marks[partition]

    return track_batch


def _emit_charge(charge: ZoneCharge, versions: dict[str, list], zone_charges, *, again: bool) -> None:
    """Send the charge when it differs from the last version sent, with the next version number;
    with ``again``, an unchanged charge is sent again under its current version."""
    fingerprint = charge.model_dump_json(exclude={"version"})
    version, last, _ = versions.get(charge.charge_id, [0, "", 0])
    if fingerprint == last:
        if again:
            zone_charges.send_soon(key=charge.zone_id.encode(), value=encode(charge.model_copy(update={"version": version})))
        return
    charge = charge.model_copy(update={"version": version + 1})
    zone_charges.send_soon(key=charge.zone_id.encode(), value=encode(charge))
    MESSAGES_OUT.labels(STAGE, topics.ZONE_CHARGES).inc()
    versions[charge.charge_id] = [version + 1, fingerprint, int(charge.first_read_ts.timestamp() * 1000)]
