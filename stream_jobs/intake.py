"""Where every read enters the jobs: validated, screened against the hotlist, then tracked.

A worker must never crash on input: anything that does not parse, or comes from a camera the
configuration does not know, leaves on the dead-letter topic with the reason and its
topic/partition/offset, so an operator can fix and replay it.

Per-plate state needs every read of a plate in one partition. Producers key ``plate_reads`` by
plate, so a read normally already sits in its plate's partition and is tracked on the spot; a
read keyed otherwise is re-keyed onto an internal topic with the same partition count (and so
the same partition for the same plate) and tracked from there. Screening runs apart, in
:mod:`stream_jobs.hotlist.screening`, so it never waits for tracking.
"""

from __future__ import annotations

from collections.abc import Collection

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import E, DeadLetter, PlateRead, dead_letter, decode, encode
from gantry.observability import ERRORS
from stream_jobs.batching import BATCH_MAX, BATCH_WITHIN_S

STAGE = "stream_jobs"
READS_BY_PLATE = "gantry-jobs-reads-by-plate"


def admit(
    raw: bytes | None, known_cameras: Collection[str], *, partition: int | None = None, offset: int | None = None
) -> PlateRead | DeadLetter:
    """The read, or the dead letter explaining why it was refused.

    ``known_cameras`` empty means the deployment has no camera register (the embedded demo), so
    every camera is accepted.
    """
    try:
        read = decode(PlateRead, raw)
    except InvalidEvent as exc:
        reason = str(exc)
    else:
        if not known_cameras or read.camera_id in known_cameras:
            return read
        reason = f"unknown camera {read.camera_id!r} (not in the configuration's cameras)"
    return dead_letter(
        raw, reason, stage=STAGE, source_topic=topics.PLATE_READS, partition=partition, offset=offset
    )


def parse_or_report(model: type[E], raw: bytes | None, stage: str, source_topic: str) -> E | DeadLetter:
    """For topics this stage writes itself: a bad message there is a bug or a stranger's write,
    which must be reported, not crash the agent."""
    try:
        return decode(model, raw)
    except InvalidEvent as exc:
        ERRORS.labels(stage, "invalid_message").inc()
        return dead_letter(raw, str(exc), stage=stage, source_topic=source_topic)


def register(jobs, track) -> None:
    """``track`` on ``plate_reads`` and ``rekeyed`` on the by-plate topic (screening is elsewhere).

    Both agents take the reads in batches (see :mod:`stream_jobs.batching`).
    """
    app = jobs.app
    by_plate = app.topic(READS_BY_PLATE, key_serializer="raw", value_serializer="raw", internal=True,
                         partitions=jobs.config.broker.partitions_for(topics.PLATE_READS))
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @app.agent(jobs.topic(topics.PLATE_READS), name="track")
    async def track_reads(stream) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            batch = []
            for event in events:
                read = admit(event.value, jobs.known_cameras)
                if isinstance(read, DeadLetter):
                    continue  # the screener dead-letters it
                if event.key == read.plate.encode():
                    batch.append((read, event))
                else:
                    by_plate.send_soon(key=read.plate.encode(), value=encode(read))
            track(batch)

    @app.agent(by_plate, name="rekeyed")
    async def rekeyed(stream) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            batch = []
            for event in events:
                read = parse_or_report(PlateRead, event.value, STAGE, READS_BY_PLATE)
                if isinstance(read, DeadLetter):
                    dead_letters.send_soon(value=encode(read))
                else:
                    batch.append((read, event))
            track(batch)
