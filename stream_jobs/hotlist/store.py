"""Reading and writing the hotlist topic, and its CSV form, for the ``gantry hotlist`` commands.

The compacted topic *is* the hotlist: an entry is a message keyed ``list:plate``, removing one is
a tombstone under that key. There is no other copy to keep in step.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry, decode, encode
from gantry.kafka import producer, replay
from stream_jobs.hotlist.rules import HotlistIndex

CSV_FIELDS = ("plate", "list", "reason", "priority", "valid_from", "valid_until", "holder")


def publish(bootstrap_servers: str, entries: Iterable[HotlistEntry]) -> int:
    sender = producer(bootstrap_servers)
    try:
        count = 0
        for entry in entries:
            sender.send(topics.HOTLIST, key=entry.key.encode(), value=encode(entry))
            count += 1
        sender.flush()
        return count
    finally:
        sender.close()


def retract(bootstrap_servers: str, keys: Iterable[str]) -> None:
    sender = producer(bootstrap_servers)
    try:
        for key in keys:
            sender.send(topics.HOTLIST, key=key.encode(), value=None)
        sender.flush()
    finally:
        sender.close()


def current(bootstrap_servers: str) -> list[HotlistEntry]:
    """The hotlist as it stands: the topic replayed from the beginning to its end now."""
    index = HotlistIndex()
    for record in replay(bootstrap_servers, topics.HOTLIST):
        if record.value is None:
            index.remove(record.key.decode())
        else:
            try:
                index.put(decode(HotlistEntry, record.value))
            except InvalidEvent:
                continue
    return index.entries()


def read_csv(path: Path) -> list[HotlistEntry]:
    """Every row of the file as an entry, or :class:`InvalidEvent` listing every bad row by line.

    All or nothing: one bad row and nothing is imported, so a half file never reaches the list.
    """
    entries, problems = [], []
    try:
        with path.open(newline="") as handle:
            rows = csv.DictReader(handle)
            missing = {"plate", "list"} - set(rows.fieldnames or ())
            if missing:
                raise InvalidEvent(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
            for row in rows:
                line = rows.line_num
                values = {k: v for k, v in row.items() if k in CSV_FIELDS and v not in (None, "")}
                if extra := sorted(k for k in row if k not in CSV_FIELDS):
                    problems.append(f"{path}:{line}: unknown column(s) {', '.join(map(str, extra))}")
                    continue
                try:
                    entries.append(HotlistEntry.model_validate(values))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    field = ".".join(str(p) for p in first["loc"]) or "(row)"
                    problems.append(f"{path}:{line}: {field}: {first['msg']}")
    except OSError as exc:
        raise InvalidEvent(f"{path}: cannot read: {exc.strerror}") from None
    if problems:
        raise InvalidEvent(f"{len(problems)} bad row(s), nothing imported:\n" + "\n".join(problems))
    return entries


def write_csv(path: Path, entries: Iterable[HotlistEntry]) -> int:
    count = 0
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for entry in entries:
            row = entry.model_dump(mode="json", include=set(CSV_FIELDS))
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_FIELDS})
            count += 1
    return count
