"""Inserting decoded batches: in the background, retried while the warehouse is away, split when
an insert is too big for it, and bisected when it refuses a row.

Three kinds of failure look alike from the outside and must be handled differently
(:func:`classify`, by ClickHouse's error code):

- The warehouse *answers* that it cannot take the data (a value out of its column's range, say a
  charge too large for its Decimal, :data:`DATA_ERROR_CODES`): retrying would loop forever. The
  insert is split in halves until the refused rows are alone, the rest is inserted, and each
  refused row becomes a dead letter carrying ClickHouse's error.
- The insert is too big for the warehouse as a whole, though its rows are fine
  (:data:`SPLIT_CODES`): more partitions than ``max_partitions_per_insert_block`` (a backlog or
  an import spanning more than 100 days of ``plate_reads``), or more memory than the query may
  use. Retrying it unchanged would fail the same way forever and, one batch at a time, stop every
  table. It is split in halves, ordered by partition first when there were too many, until the
  pieces go in. A single row still too big is retried a few times (:data:`ROW_ATTEMPTS`, in case
  other queries held the memory) and then dead-lettered with the error.
- Anything else: the warehouse is unreachable or in trouble (connection refused, timeout, too
  many parts awaiting merges, a missing table) and every row is fine and must wait. The insert is
  retried with backoff, unchanged, for as long as it takes.

Every piece keeps a deduplication token made from the offsets of the messages it holds, so a
retry of an insert that did land, or of a piece of it, is a no-op.

The :class:`Writer` runs one insert at a time on a background thread so the sink decodes the next
batch meanwhile; the caller commits a batch's offsets only after :meth:`Writer.collect` returns it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from gantry.events import DeadLetter
from gantry.observability import ERRORS, MESSAGES_OUT
from warehouse.batch import STAGE, Drained, PendingInsert, letter_for

log = logging.getLogger(__name__)

INSERT_SETTINGS = {
    "date_time_input_format": "best_effort",
    "input_format_null_as_default": "1",
    "deduplicate_blocks_in_dependent_materialized_views": "1",
}
DATA_ERROR_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    25,   # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND (e.g. a Decimal too big for its column)
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407,  # DECIMAL_OVERFLOW
    469,  # VIOLATED_CONSTRAINT
    691,  # UNKNOWN_ELEMENT_OF_ENUM
})  # fmt: skip
"""ClickHouse errors that mean "these rows cannot be stored", as opposed to "not now"."""
MEMORY_LIMIT_EXCEEDED = 241
TOO_MANY_PARTS = 252
LIMIT_EXCEEDED = 290
"""Among others, a body over the server's limit (``gantry warehouse serve --max-body-bytes``, or a
proxy's): a smaller insert fits."""
"""Also "too many parts awaiting merges", which a smaller insert makes worse: only the "too many
partitions for a single insert block" message (:data:`_TOO_MANY_PARTITIONS`) is split."""
_TOO_MANY_PARTITIONS = re.compile(r"partitions for (a )?single insert block|max_partitions_per_insert_block", re.I)
ROW_ATTEMPTS = 5
"""Inserts of one row alone that may fail as too big before it is dead-lettered. Memory
that other queries hold is given back within seconds; a row still over the limit after the
backoff between these tries (0.5 + 1 + 2 + 4 s) is too big for this warehouse's limit, and
waiting on it would stop every table, while its dead letter keeps the reason for whoever raises
the limit and replays it."""
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 10.0
_REASON_CHARS = 500


class WriteAbandoned(Exception):
    """The sink is stopping while the warehouse is unreachable; the batch stays uncommitted."""


class Failure(Enum):
    REFUSED = "refused"
    """The data: bisect down to the refused rows."""
    TOO_MANY_PARTITIONS = "too many partitions"
    """The insert's size: split along the table's partitions."""
    TOO_BIG = "too big"
    """The insert's size: split in halves."""
    WAIT = "wait"
    """The warehouse: retry unchanged."""


def classify(exc: BaseException) -> Failure:
    code = exc.code if isinstance(exc, DatabaseError) else None
    if code in DATA_ERROR_CODES:
        return Failure.REFUSED
    if code == TOO_MANY_PARTS and _TOO_MANY_PARTITIONS.search(str(exc)):
        return Failure.TOO_MANY_PARTITIONS
    if code in (MEMORY_LIMIT_EXCEEDED, LIMIT_EXCEEDED):
        return Failure.TOO_BIG
    return Failure.WAIT


def refusal_reason(table: str, exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return f"the warehouse refused the row for {table}: {text[:_REASON_CHARS]}"


def too_big_reason(table: str, exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return f"the warehouse failed the row for {table} alone {ROW_ATTEMPTS} times: {text[:_REASON_CHARS]}"


@dataclass
class Written:
    """A batch the warehouse has: rows inserted, and the rows it refused as dead letters."""

    drained: Drained
    rows: int = 0
    refused: list[DeadLetter] = field(default_factory=list)


def insert(client: Client, pending: PendingInsert) -> None:
    client.raw_insert(
        pending.table,
        insert_block=pending.body(),
        fmt="JSONEachRow",
        settings=INSERT_SETTINGS | {"insert_deduplication_token": pending.token},
    )


def _raise(exc: Exception, attempt: int) -> None:
    raise exc


def write(client: Client, drained: Drained, wait: Callable[[Exception, int], None] = _raise) -> Written:
    """Insert every table's rows, splitting what is too big and setting refused rows aside.

    An insert that must be waited for is handed to ``wait`` with its count of consecutive failures,
    then tried again: :class:`Writer` sleeps there, the default raises the error.
    """
    written = Written(drained)
    todo = deque(drained.inserts)
    failures = too_big = 0  # consecutive failures of the insert at the head, and how many as too big
    while todo:
        pending = todo.popleft()
        try:
            insert(client, pending)
        except Exception as exc:
            failure = classify(exc)
            if failure is not Failure.WAIT and len(pending.rows) > 1:
                if failure is Failure.TOO_MANY_PARTITIONS:
                    pending = pending.by_partition()
                if failure is not Failure.REFUSED:
                    ERRORS.labels(STAGE, "insert_split").inc()
                    log.warning("%d rows of %s split: %s", len(pending.rows), pending.table, exc)
                todo.extendleft(reversed(pending.halves()))
                failures = too_big = 0
                continue
            failures += 1
            too_big += failure is not Failure.WAIT
            if failure is Failure.REFUSED or too_big >= ROW_ATTEMPTS:
                log.warning("the warehouse refused a row of %s: %s", pending.table, exc)
                reason = (refusal_reason if failure is Failure.REFUSED else too_big_reason)(pending.table, exc)
                written.refused.append(letter_for(pending.sources[0], reason))
                failures = too_big = 0
                continue
            todo.appendleft(pending)
            wait(exc, failures)
            continue
        failures = too_big = 0
        MESSAGES_OUT.labels(STAGE, pending.table).inc(len(pending.rows))
        written.rows += len(pending.rows)
    return written


class Writer:
    """One batch at a time on a background thread, retried with backoff until it lands."""

    def __init__(self, client: Client, stop: threading.Event) -> None:
        self.client = client
        self.stop = stop
        self.healthy = True
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-writer")
        self._in_flight: Future[Written] | None = None

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def finished(self) -> bool:
        return self._in_flight is not None and self._in_flight.done()

    def submit(self, drained: Drained) -> None:
        if self._in_flight is not None:
            raise RuntimeError("collect the batch in flight before submitting another")
        self._in_flight = self._pool.submit(self._write_until_done, drained)

    def collect(self) -> Written:
        """Wait for the batch in flight; raises :class:`WriteAbandoned` if it was given up."""
        if self._in_flight is None:
            raise RuntimeError("no batch in flight")
        try:
            return self._in_flight.result()
        finally:
            self._in_flight = None

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _write_until_done(self, drained: Drained) -> Written:
        written = write(self.client, drained, self._wait)
        self.healthy = True
        return written

    def _wait(self, exc: Exception, failures: int) -> None:
        """Unreachable or in trouble: every row waits for it."""
        self.healthy = False
        ERRORS.labels(STAGE, "insert_failed").inc()
        backoff = min(_FIRST_BACKOFF_S * 2 ** (failures - 1), _MAX_BACKOFF_S)
        log.warning("insert failed, retrying in %.1fs: %s", backoff, exc)
        if self.stop.wait(backoff):
            raise WriteAbandoned from exc
