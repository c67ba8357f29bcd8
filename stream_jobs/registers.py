"""Registers an operator imports and every worker keeps whole, each on a compacted topic.

The hotlist, the vehicle register and the charge concessions are the same kind of thing: entries
with a key (the message key on the topic: a new entry under a key replaces the old one, a
tombstone removes it) and a plate they are looked up by. The compacted topic *is* the register:
there is no other copy to keep in step, and replaying it from the beginning gives the register as
it stands. What they share lives here: the index a worker keeps (:class:`PlateIndex`, kept equal
to the topic by :class:`stream_jobs.runtime.compacted.RegisterFeed`), and the topic and CSV I/O behind the
``gantry hotlist``, ``gantry vehicles`` and ``gantry concessions`` commands (:class:`Register`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pydantic import ValidationError

from gantry.errors import InvalidEvent
from gantry.events import Event, decode, encode
from gantry.files import NotUtf8, utf8_text
from gantry.kafka import key_text, producer, replay


class Entry(Protocol):
    plate: str

    @property
    def key(self) -> str: ...


E = TypeVar("E", bound=Entry)
M = TypeVar("M", bound=Event)
_NONE: dict = {}  # the entries of a plate not in the register; never changed


class PlateIndex(Generic[E]):
    """A register's current entries, by key and by plate: a look-up per read costs a dictionary
    access, however many entries the register holds."""

    def __init__(self) -> None:
        self._by_key: dict[str, E] = {}
        self._by_plate: dict[str, dict[str, E]] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def put(self, entry: E) -> None:
        self.remove(entry.key)
        self._by_key[entry.key] = entry
        self._by_plate.setdefault(entry.plate, {})[entry.key] = entry

    def remove(self, key: str) -> None:
        old = self._by_key.pop(key, None)
        if old is not None:
            on_plate = self._by_plate[old.plate]
            del on_plate[key]
            if not on_plate:
                del self._by_plate[old.plate]

    def entries(self) -> list[E]:
        return [self._by_key[key] for key in sorted(self._by_key)]

    def on_plate(self, plate: str) -> Collection[E]:
        """The plate's entries as they stand (a view, not a copy: asked for several times per read,
        mostly of plates with none)."""
        return self._by_plate.get(plate, _NONE).values()


@dataclass(frozen=True)
class Register(Generic[M]):
    """A register's topic, its entry model and its CSV form (``columns``, in order; a column
    named otherwise than its model field is mapped by ``fields``)."""

    topic: str
    model: type[M]
    columns: tuple[str, ...]
    required: tuple[str, ...]
    fields: Mapping[str, str] = field(default_factory=dict)  # CSV column -> model field
    across: Callable[[list[tuple[int, M]], list[M]], list[tuple[int, str, str]]] | None = None
    """A rule across the file's rows and the register they go into (a holder's plates, counted):
    (line, column, why) per bad row."""

    def publish(self, bootstrap_servers: str, entries: Iterable[M]) -> int:
        sender = producer(bootstrap_servers)
        try:
            count = 0
            for entry in entries:
                sender.send(self.topic, key=entry.key.encode(), value=encode(entry))
                count += 1
            sender.flush()
            return count
        finally:
            sender.close()

    def retract(self, bootstrap_servers: str, keys: Iterable[str]) -> None:
        """Remove the entries under these keys (a tombstone each)."""
        sender = producer(bootstrap_servers)
        try:
            for key in keys:
                sender.send(self.topic, key=key.encode(), value=None)
            sender.flush()
        finally:
            sender.close()

    def current(self, bootstrap_servers: str) -> list[M]:
        """The register as it stands: the topic replayed from the beginning to its end now."""
        index: PlateIndex[M] = PlateIndex()
        for record in replay(bootstrap_servers, self.topic):
            if record.value is None:
                index.remove(key_text(record.key))
            else:
                try:
                    index.put(decode(self.model, record.value))
                except InvalidEvent:
                    continue
        return index.entries()

    def read_csv(self, path: Path, check: Callable[[M], tuple[str, str] | None] | None = None,
                 existing: Iterable[M] = ()) -> list[M]:
        """Every row of the file as an entry, or :class:`InvalidEvent` naming every bad row by file,
        line and column.

        All or nothing: one bad row and nothing is imported, so a half file never reaches the
        register. Two rows with the same key are an error too: the second would silently replace
        the first. ``check`` may refuse a well-formed entry, as (column, why), against what the
        file alone cannot tell (the configured zones, the classes they price); :attr:`across` checks
        the rows together, with the ``existing`` entries of the register.
        """
        entries: list[M] = []
        problems: list[str] = []
        lines: dict[str, int] = {}
        columns = {f: c for c, f in self.fields.items()}  # model field -> CSV column, for messages
        rows = csv.DictReader(io.StringIO(_text_of(path), newline=""))
        try:
            header = rows.fieldnames or []
            if doubled := sorted({c for c in header if header.count(c) > 1}):
                raise InvalidEvent(f"{path}:1: column(s) {', '.join(doubled)} named twice")
            missing = set(self.required) - set(header)
            if missing:
                raise InvalidEvent(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
            for row in rows:
                line = rows.line_num
                if None in row:  # DictReader's key for the values beyond the header's columns
                    problems.append(f"{path}:{line}: {len(header) + len(row[None])} values for the header's "
                                    f"{len(header)} columns")
                    continue
                if extra := sorted(str(k) for k in row if k not in self.columns):
                    problems.append(f"{path}:{line}: unknown column(s) {', '.join(extra)}")
                    continue
                values = {self.fields.get(k, k): v for k, v in row.items() if v not in (None, "")}
                try:
                    entry = self.model.model_validate(values)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(columns.get(str(p), str(p)) for p in first["loc"]) or "(row)"
                    problems.append(f"{path}:{line}: {where}: {first['msg']}")
                    continue
                if check is not None and (refused := check(entry)) is not None:
                    problems.append(f"{path}:{line}: {refused[0]}: {refused[1]}")
                    continue
                if entry.key in lines:
                    problems.append(f"{path}:{line}: same entry as line {lines[entry.key]} ({entry.key})")
                    continue
                lines[entry.key] = line
                entries.append(entry)
        except csv.Error as exc:  # an unclosed quote swallowing the rest of the file, a field over csv's limit
            raise InvalidEvent(f"{path}:{rows.reader.line_num}: not CSV: {exc}") from None
        if self.across is not None:
            found = self.across([(lines[entry.key], entry) for entry in entries], list(existing))
            problems += [f"{path}:{line}: {column}: {why}" for line, column, why in found]
        if problems:
            raise InvalidEvent(f"{len(problems)} bad row(s), nothing imported:\n" + "\n".join(problems))
        return entries

    def write_csv(self, path: Path, entries: Iterable[M]) -> int:
        """The entries in the CSV form :meth:`read_csv` reads back."""
        count = 0
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            for entry in entries:
                row = entry.model_dump(mode="json")
                values = {c: row.get(self.fields.get(c, c)) for c in self.columns}
                writer.writerow({c: "" if v is None else v for c, v in values.items()})
                count += 1
        return count


def _text_of(path: Path) -> str:
    """The file as UTF-8 text (:func:`gantry.files.utf8_text`); a file saved in a legacy code page is
    refused with the line of its first byte that is not UTF-8."""
    try:
        return utf8_text(path.read_bytes())
    except OSError as exc:
        raise InvalidEvent(f"{path}: cannot read: {exc.strerror}") from None
    except NotUtf8 as exc:
        raise InvalidEvent(f"{path}:{exc}; save the file as CSV UTF-8") from None
