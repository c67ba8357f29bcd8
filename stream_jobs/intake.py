"""Where every read enters the jobs: validated before it is screened or tracked.

A worker must never crash on input: anything that does not parse, or comes from a camera the
configuration does not know, leaves on the dead-letter topic with the reason and its
topic/partition/offset, so an operator can fix and replay it. Both consumers of ``plate_reads``
(:mod:`stream_jobs.hotlist.screening` and :mod:`stream_jobs.plate_job`) admit reads the same way;
the screener alone sends the dead letters, so each bad read is reported once.
"""

from __future__ import annotations

from collections.abc import Collection

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import E, DeadLetter, PlateRead, dead_letter, decode, encode
from gantry.observability import ERRORS

STAGE = "stream_jobs"


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
