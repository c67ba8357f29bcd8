"""A batch of consumed messages, decoded into the rows of each warehouse table; no I/O.

Messages are only buffered as they arrive; they are decoded when the batch is drained, in one
tight loop per table, because decoding is most of the sink's work: each message is validated
with its event model straight from the JSON bytes (pydantic-core, without the per-call overhead
of ``model_validate_json``), and a table's rows are serialised in one call as a JSON array that
ClickHouse reads as ``JSONEachRow``. Validation is exactly the event model's: a message that
fails it comes back as a dead letter whose reason names the field, as :func:`gantry.events.decode`
words it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from pydantic import TypeAdapter, ValidationError

from gantry.errors import InvalidEvent
from gantry.events import DeadLetter, Event, dead_letter, decode
from gantry.ids import stable_id
from warehouse.schema import EVENT_TABLES

STAGE = "warehouse-sink"
_BY_TOPIC = {t.topic: t for t in EVENT_TABLES}


@dataclass(frozen=True)
class Message:
    """A consumed message and where it came from: enough to dead-letter it or commit past it."""

    topic: str
    partition: int
    offset: int
    raw: bytes | None

    def dead_letter(self, reason: str) -> DeadLetter:
        return dead_letter(self.raw, reason, stage=STAGE, source_topic=self.topic, partition=self.partition,
                           offset=self.offset)  # fmt: skip


@dataclass(frozen=True)
class PendingInsert:
    """The rows of one table in one batch, with the messages they came from and a retry token."""

    table: str
    rows: list[Event]
    sources: list[Message]

    @property
    def token(self) -> str:
        """The same messages give the same token, so an identical retry is dropped by the server."""
        return insert_token(self.table, offset_ranges(self.sources))

    def body(self) -> bytes:
        return _rows_adapter(type(self.rows[0])).dump_json(self.rows)

    def halves(self) -> tuple[PendingInsert, PendingInsert]:
        middle = len(self.rows) // 2
        return (
            PendingInsert(self.table, self.rows[:middle], self.sources[:middle]),
            PendingInsert(self.table, self.rows[middle:], self.sources[middle:]),
        )


@dataclass
class Drained:
    """A decoded batch: inserts per table, dead letters, and the offsets to commit once it is safe."""

    inserts: list[PendingInsert] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    commit_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the next offset to read, past every message of the batch."""

    @property
    def rows(self) -> int:
        return sum(len(i.rows) for i in self.inserts)


class Batch:
    """Messages waiting for the warehouse, counted towards ``max_rows`` and aged by the oldest."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._messages: list[Message] = []
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, message: Message, now: float) -> None:
        if self._opened_at is None:
            self._opened_at = now
        self._messages.append(message)

    def due(self, now: float) -> bool:
        return len(self._messages) >= self.max_rows or (
            self._opened_at is not None and now - self._opened_at >= self.max_seconds
        )

    def drain(self) -> Drained:
        """Decode everything buffered and start a new batch."""
        messages, self._messages, self._opened_at = self._messages, [], None
        return decode_batch(messages)


def decode_batch(messages: list[Message]) -> Drained:
    drained = Drained()
    by_table: dict[str, PendingInsert] = defaultdict(lambda: PendingInsert("", [], []))
    for message in messages:
        place = (message.topic, message.partition)
        drained.commit_offsets[place] = max(drained.commit_offsets.get(place, 0), message.offset + 1)
        target = _BY_TOPIC.get(message.topic)
        if target is None:
            drained.letters.append(message.dead_letter(f"no warehouse table for topic {message.topic!r}"))
            continue
        try:
            event = decode_event(target.model, message.raw)
        except InvalidEvent as exc:
            drained.letters.append(message.dead_letter(str(exc)))
            continue
        pending = by_table[target.table.name]
        pending.rows.append(event)
        pending.sources.append(message)
    drained.inserts = [PendingInsert(name, p.rows, p.sources) for name, p in by_table.items()]
    return drained


def decode_event(model: type[Event], raw: bytes | None) -> Event:
    """The model's own validation, from the JSON bytes; only a failure takes the slower path for its reason."""
    if raw is not None:
        try:
            return model.__pydantic_validator__.validate_json(raw)
        except ValidationError:
            pass
    return decode(model, raw)  # raises InvalidEvent naming the field


def offset_ranges(sources: list[Message]) -> dict[tuple[str, int], tuple[int, int]]:
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for m in sources:
        first, last = ranges.get((m.topic, m.partition), (m.offset, m.offset))
        ranges[(m.topic, m.partition)] = (min(first, m.offset), max(last, m.offset))
    return ranges


def insert_token(table: str, ranges: dict[tuple[str, int], tuple[int, int]]) -> str:
    """The same messages give the same token, whatever order they arrived in."""
    spans = sorted(f"{topic}:{partition}:{first}-{last}" for (topic, partition), (first, last) in ranges.items())
    return stable_id(table, *spans)


@cache
def _rows_adapter(model: type[Event]) -> TypeAdapter[list[Event]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]
