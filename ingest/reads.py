"""From an accepted edge event to the PlateRead on topic ``plate_reads``; batch import of reads.

The HTTP endpoint and ``gantry ingest reads FILE.jsonl`` share :func:`make_read`, so a read
imported from a camera's backlog file is the same read (same read_id, same pictures) as the one
the camera pushed live. A JSONL file uses Gantry's edge JSON schema, one read per line, with
``camera_id`` on each line or given once with ``--camera``.

A read timed outside ``event_time`` of its receipt (the request's arrival, the start of an import)
is rejected, before its pictures are stored: a camera whose clock says 2100 must not move the
stream jobs' watermarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from gantry import topics
from gantry.config import EventTimeConfig, GantryConfig
from gantry.events import PlateRead, dead_letter, encode
from ingest.edge_formats import EdgeEvent, EdgeFormatError, parse_gantry_json, read_id_of, to_plate_read
from ingest.publish import STAGE, Publisher, UnknownCamera, check_camera
from ingest.snapshots import SnapshotStore


class ReadRejected(ValueError):
    """An event that parsed but cannot become a read; the message names the field."""


def check_time(event: EdgeEvent, received_at: datetime, window: EventTimeConfig) -> None:
    """Reject an event timed outside the window around its receipt (one without a time has none)."""
    if event.ts is not None and (refused := window.refusal(event.ts, received_at)):
        raise ReadRejected(refused)


def make_read(
    event: EdgeEvent, camera_id: str, received_at: datetime, store: SnapshotStore, window: EventTimeConfig
) -> PlateRead:
    """Check the event's time, store its pictures, then build its read (which refers to the
    overview, else the plate)."""
    check_time(event, received_at, window)
    ts = event.ts or received_at
    refs = {
        kind: store.put(ts, camera_id, read_id_of(event, camera_id, ts), kind, jpeg)
        for kind, jpeg in event.snapshots.items()
    }
    try:
        return to_plate_read(event, camera_id, received_at, refs.get("overview") or refs.get("plate"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ReadRejected(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str
    text: str


@dataclass
class ImportReport:
    sent: int = 0
    failed: int = 0  # accepted lines the broker did not acknowledge
    bad: list[BadLine] | None = None


def parse_line(line: str, config: GantryConfig, default_camera: str | None) -> tuple[EdgeEvent, str]:
    event = parse_gantry_json(line.encode())
    camera_id = event.camera_id or default_camera
    if camera_id is None:
        raise EdgeFormatError("camera_id: required on each line, or give --camera")
    check_camera(config, camera_id)
    return event, camera_id


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, line


def find_bad_lines(path: Path, config: GantryConfig, default_camera: str | None) -> list[BadLine]:
    """Validate every line without sending anything (the first pass of ``--strict``)."""
    bad = []
    received_at = datetime.now(UTC)
    for number, line in numbered_lines(path):
        try:
            event, _ = parse_line(line, config, default_camera)
            check_time(event, received_at, config.event_time)
        except (EdgeFormatError, UnknownCamera, ReadRejected) as exc:
            bad.append(BadLine(number, str(exc), line))
    return bad


def import_reads(
    path: Path,
    config: GantryConfig,
    publisher: Publisher,
    store: SnapshotStore,
    default_camera: str | None = None,
    on_line: Callable[[int], None] = lambda number: None,
) -> ImportReport:
    """Send every valid line as a read; bad lines go to the dead-letter topic and into the report."""
    report = ImportReport(bad=[])
    received_at = datetime.now(UTC)
    for number, line in numbered_lines(path):
        try:
            event, camera_id = parse_line(line, config, default_camera)
            publisher.send_read(make_read(event, camera_id, received_at, store, config.event_time))
        except (EdgeFormatError, UnknownCamera, ReadRejected) as exc:
            report.bad.append(BadLine(number, str(exc), line))
            letter = dead_letter(line, str(exc), stage=STAGE, source_topic=f"file:{path}", offset=number)
            publisher.send(topics.DEAD_LETTERS, None, encode(letter))
        on_line(number)
    acks, report.failed = publisher.flush()
    report.sent = acks[topics.PLATE_READS]
    return report
