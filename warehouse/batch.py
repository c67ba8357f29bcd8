"""A batch of consumed messages, decoded into the rows of each warehouse table; no I/O.

Messages are only buffered as they arrive, a partition's poll at a time; they are decoded when
the batch is drained, in one tight loop per topic, because decoding is most of the sink's work:
each message is validated with its event model straight from the JSON bytes (pydantic-core,
without the per-call overhead of ``model_validate_json``), and a table's rows are serialised in
one call, as a JSON array that ClickHouse reads as ``JSONEachRow``. Validation is exactly the
event model's: a message that fails it comes back as a dead letter whose reason names the field,
as :func:`gantry.events.decode` words it.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple, Protocol

from pydantic import TypeAdapter, ValidationError

from gantry.errors import InvalidEvent
from gantry.events import DeadLetter, Event, dead_letter, decode
from gantry.ids import stable_id
from warehouse.schema import EVENT_TABLES

STAGE = "warehouse-sink"
_BY_TOPIC = {t.topic: t for t in EVENT_TABLES}
_BY_TABLE = {t.table.name: t.table for t in EVENT_TABLES}


class Record(Protocol):
    """A consumed message: kafka-python's ``ConsumerRecord`` or a :class:`Message`."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


class Message(NamedTuple):
    """A message made outside Kafka (benchmarks, tests), shaped like a ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def letter_for(record: Record, reason: str) -> DeadLetter:
    return dead_letter(record.value, reason, stage=STAGE, source_topic=record.topic, partition=record.partition,
                       offset=record.offset)  # fmt: skip


@dataclass(frozen=True)
class PendingInsert:
    """The rows of one table in one batch, with the messages they came from and a retry token."""

    table: str
    rows: list[Event]
    sources: list[Record]

    @property
    def token(self) -> str:
        """The same messages give the same token, so an identical retry is dropped by the server."""
        return insert_token(self.table, offset_runs(self.sources), content_digest(self.sources))

    def body(self) -> bytes:
        return _rows_adapter(type(self.rows[0])).dump_json(self.rows)

    def without(self, dropped: Callable[[Event], bool]) -> PendingInsert:
        """The same insert less the rows ``dropped`` says (with their messages)."""
        kept = [i for i, row in enumerate(self.rows) if not dropped(row)]
        if len(kept) == len(self.rows):
            return self
        return PendingInsert(self.table, [self.rows[i] for i in kept], [self.sources[i] for i in kept])

    def halves(self) -> tuple[PendingInsert, PendingInsert]:
        middle = len(self.rows) // 2
        return (
            PendingInsert(self.table, self.rows[:middle], self.sources[:middle]),
            PendingInsert(self.table, self.rows[middle:], self.sources[middle:]),
        )

    def by_partition(self) -> PendingInsert:
        """The same rows ordered by the table partition each goes to, so that each of its
        :meth:`halves` spans about half of the partitions."""
        partition_of = _BY_TABLE[self.table].partition_of
        order = sorted(range(len(self.rows)), key=lambda i: partition_of(self.rows[i]))
        return PendingInsert(self.table, [self.rows[i] for i in order], [self.sources[i] for i in order])


@dataclass
class Drained:
    """A decoded batch: inserts per table, dead letters, and the offsets to commit once it is safe."""

    inserts: list[PendingInsert] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    commit_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the next offset to read, past every message of the batch."""


class Batch:
    """Messages waiting for the warehouse, counted towards ``max_rows`` and aged by the oldest."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._by_topic: dict[str, list[Record]] = {}
        self._commit_offsets: dict[tuple[str, int], int] = {}
        self._messages = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return self._messages

    def extend(self, records: Sequence[Record], now: float) -> None:
        """Take one partition's records (in offset order, as a poll returns them)."""
        if not records:
            return
        if self._opened_at is None:
            self._opened_at = now
        first = records[0]
        self._by_topic.setdefault(first.topic, []).extend(records)
        place = (first.topic, first.partition)
        self._commit_offsets[place] = max(self._commit_offsets.get(place, 0), records[-1].offset + 1)
        self._messages += len(records)

    def due(self, now: float) -> bool:
        return self._messages >= self.max_rows or (
            self._opened_at is not None and now - self._opened_at >= self.max_seconds
        )

    def drain(self) -> Drained:
        """Decode everything buffered and start a new batch."""
        drained = Drained(commit_offsets=self._commit_offsets)
        with _collector_paused():
            self._decode_into(drained)
        self.discard()
        return drained

    def discard(self) -> None:
        """Forget everything buffered: the consumer is about to read it again."""
        self._by_topic, self._commit_offsets, self._messages, self._opened_at = {}, {}, 0, None

    def _decode_into(self, drained: Drained) -> None:
        for topic, records in self._by_topic.items():
            target = _BY_TOPIC.get(topic)
            if target is None:
                drained.letters += [letter_for(r, f"no warehouse table for topic {topic!r}") for r in records]
                continue
            pending = decode_records(target.table.name, target.model, records, drained.letters)
            if pending.rows:
                drained.inserts.append(pending)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Decoding allocates a dozen objects per message, none in a reference cycle; the cyclic
    garbage collector would walk the growing batch again and again (10-25% of decoding, more
    for bigger batches) and find nothing to free. Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_records(table: str, model: type[Event], records: list[Record], letters: list[DeadLetter]) -> PendingInsert:
    """Validate each record with the model from its JSON bytes; failures join ``letters``.

    The hot loop calls pydantic-core directly; only a failure goes through
    :func:`gantry.events.decode` again, for the reason naming the field.
    """
    validate = model.__pydantic_validator__.validate_json
    rows: list[Event] = []
    sources: list[Record] = []
    for record in records:
        try:
            rows.append(validate(record.value))
        except ValidationError:
            letters.append(letter_for(record, _reason(model, record.value)))
            continue
        sources.append(record)
    return PendingInsert(table, rows, sources)


def _reason(model: type[Event], raw: bytes | None) -> str:
    """:func:`gantry.events.decode`'s wording of why ``raw`` is not a valid ``model``."""
    try:
        decode(model, raw)
    except InvalidEvent as exc:
        return str(exc)
    return f"invalid {model.__name__}"


def offset_runs(sources: list[Record]) -> dict[tuple[str, int], list[tuple[int, int]]]:
    """Each partition's offsets as runs of consecutive ones (first, last), in order."""
    offsets: dict[tuple[str, int], list[int]] = {}
    for m in sources:
        offsets.setdefault((m.topic, m.partition), []).append(m.offset)
    runs: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for place, taken in offsets.items():
        taken.sort()
        first = last = taken[0]
        runs[place] = []
        for offset in taken[1:]:
            if offset != last + 1:
                runs[place].append((first, last))
                first = offset
            last = offset
        runs[place].append((first, last))
    return runs


def content_digest(sources: list[Record]) -> str:
    """A digest of the messages' values in offset order: a broker that lost its topics numbers
    new messages from 0 again, and only their content tells them from a retry of the old ones."""
    digest = hashlib.blake2b(digest_size=16)
    for m in sorted(sources, key=lambda m: (m.topic, m.partition, m.offset)):
        value = m.value or b""
        digest.update(len(value).to_bytes(8, "little"))
        digest.update(value)
    return digest.hexdigest()


def insert_token(table: str, runs: dict[tuple[str, int], list[tuple[int, int]]], content: str) -> str:
    """The same messages give the same token, whatever order they arrived in; other messages give
    another. Every offset counts, not only the first and last of a partition: an insert split by
    partition key holds every other message, and one cut differently on a replay may span the
    same range with other messages, which the server must not take for a repeat and drop. The
    ``content`` digest tells new messages at old offsets (after a broker reset) from a retry."""
    spans = sorted(
        f"{topic}:{partition}:{','.join(f'{first}-{last}' for first, last in spans)}"
        for (topic, partition), spans in runs.items()
    )
    return stable_id(table, *spans, content)


@cache
def _rows_adapter(model: type[Event]) -> TypeAdapter[list[Event]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]
