"""Turning raw ``plate_reads`` messages into trusted reads, or into dead letters with a reason.

A worker must never crash on input: anything that does not parse, or comes from a camera the
configuration does not know, leaves the pipeline on the dead-letter topic with the reason and its
topic/partition/offset, so an operator can fix and replay it.
"""

from __future__ import annotations

from collections.abc import Collection

from gantry.errors import InvalidEvent
from gantry.events import DeadLetter, PlateRead, decode, dead_letter
from gantry import topics

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
