"""Inserting decoded batches: in the background, retried while the warehouse is away, and
bisected when it refuses a row.

Two failures look alike from the outside and must be handled oppositely. When the warehouse is
unreachable or in trouble (connection refused, timeout, memory, too many parts), every row is
fine and must wait: the batch is retried with backoff, unchanged, and its deduplication token
turns a retry of an insert that did land into a no-op. When the warehouse *answers* that it
cannot take the data (a value out of its column's range, say a charge too large for its
Decimal), retrying would loop forever: the batch is split in halves until the refused rows are
alone, the rest is inserted, and each refused row becomes a dead letter carrying ClickHouse's
error. Which is which is decided by ClickHouse's error code (:data:`DATA_ERROR_CODES`).

The :class:`Writer` runs one insert at a time on a background thread so the sink decodes the next
batch meanwhile; the caller commits a batch's offsets only after :meth:`Writer.collect` returns it.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

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
_MAX_BACKOFF_S = 10.0
_REASON_CHARS = 500


class WriteAbandoned(Exception):
    """The sink is stopping while the warehouse is unreachable; the batch stays uncommitted."""


def refused(exc: BaseException) -> bool:
    """True when the warehouse answered that the data itself is unacceptable."""
    return isinstance(exc, DatabaseError) and exc.code in DATA_ERROR_CODES


def refusal_reason(table: str, exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return f"the warehouse refused the row for {table}: {text[:_REASON_CHARS]}"


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


def write(client: Client, drained: Drained) -> Written:
    """Insert every table's rows, setting refused rows aside; raises while the warehouse is away."""
    written = Written(drained)
    for pending in drained.inserts:
        _write_or_bisect(client, pending, written)
    return written


def _write_or_bisect(client: Client, pending: PendingInsert, written: Written) -> None:
    try:
        insert(client, pending)
    except Exception as exc:
        if not refused(exc):
            raise
        if len(pending.rows) == 1:
            log.warning("the warehouse refused a row of %s: %s", pending.table, exc)
            written.refused.append(letter_for(pending.sources[0], refusal_reason(pending.table, exc)))
            return
        for half in pending.halves():
            _write_or_bisect(client, half, written)
        return
    MESSAGES_OUT.labels(STAGE, pending.table).inc(len(pending.rows))
    written.rows += len(pending.rows)


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
        backoff = 0.5
        while True:
            try:
                written = write(self.client, drained)
            except Exception as exc:  # unreachable or in trouble: every row waits for it
                self.healthy = False
                ERRORS.labels(STAGE, "insert_failed").inc()
                log.warning("insert failed, retrying in %.1fs: %s", backoff, exc)
                if self.stop.wait(backoff):
                    raise WriteAbandoned from exc
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            self.healthy = True
            return written
