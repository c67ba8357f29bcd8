"""Where every read enters the jobs: validated before it is screened or tracked.

A worker must never crash on input: anything that does not parse, comes from a camera the
configuration does not know, or is timed outside ``event_time`` of its receipt, leaves on the
dead-letter topic with the reason and its topic/partition/offset, so an operator can fix and
replay it. The time window is what keeps one read timed in 9999 (or 1970) from moving a
partition's watermark, and with it every charging day, to the end (or the start) of the
calendar. Both consumers of ``plate_reads`` (:mod:`stream_jobs.hotlist.screening` and
:mod:`stream_jobs.plate_job`) admit reads the same way, against the same receipt; the screener
alone sends their dead letters, so each bad read is reported once (the per-plate job sends those
of its own re-keyed topic).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from gantry import topics
from gantry.config import EventTimeConfig
from gantry.errors import InvalidEvent
from gantry.events import DeadLetter, E, PlateRead, dead_letter, decode
from gantry.observability import ERRORS

STAGE = "stream_jobs"


def receipt(timestamp_ms: int, now: datetime, window: EventTimeConfig) -> datetime:
    """When a record was received, for its read's time window: the record's own timestamp (when
    it was produced: the same for both consumers of a read, for a replay and for a backlog) when
    that lies between ``max_past_s`` ago and ``now``, else ``now``, so that a record stamped
    wrongly cannot widen the window."""
    now_ms = now.timestamp() * 1000
    if now_ms - window.max_past_s * 1000 <= timestamp_ms <= now_ms:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return now


def admit(
    raw: bytes | None,
    known_cameras: Collection[str],
    window: EventTimeConfig,
    received_at: datetime,
    *,
    source_topic: str = topics.PLATE_READS,
    partition: int | None = None,
    offset: int | None = None,
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
        if known_cameras and read.camera_id not in known_cameras:
            reason = f"unknown camera {read.camera_id!r} (not in the configuration's cameras)"
        elif (refused := window.refusal(read.ts, received_at)) is None:
            return read
        else:
            reason = refused
    return dead_letter(raw, reason, stage=STAGE, source_topic=source_topic, partition=partition, offset=offset)


def parse_or_report(model: type[E], raw: bytes | None, stage: str, source_topic: str) -> E | DeadLetter:
    """For topics this stage writes itself: a bad message there is a bug or a stranger's write,
    which must be reported, not crash the agent."""
    try:
        return decode(model, raw)
    except InvalidEvent as exc:
        ERRORS.labels(stage, "invalid_message").inc()
        return dead_letter(raw, str(exc), stage=stage, source_topic=source_topic)
