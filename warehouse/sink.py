"""The sink: output topics into warehouse tables, in batches, at least once, without duplicates.

Messages are decoded and validated with the shared event models, buffered per table and written
when the buffer holds ``batch_rows`` rows or its oldest message is ``batch_seconds`` old. Offsets
are committed only after the warehouse has acknowledged every table's insert, so a crash replays
the batch. The replay does not duplicate rows: an insert carries a deduplication token made of
its topic/partition/offset ranges (an identical retry is dropped by the server), and where a
replayed batch is cut differently the tables' Replacing engines collapse rows with the same id.
A message that does not decode goes to the dead-letter topic with the reason; the sink goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from clickhouse_connect.driver import Client
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError

from gantry import kafka
from gantry.config import GantryConfig
from gantry.errors import InvalidEvent
from gantry.events import DeadLetter, dead_letter, decode
from gantry.ids import stable_id
from gantry.kafka import send_dead_letter
from gantry.observability import ERRORS, MESSAGES_IN, MESSAGES_OUT, serve_health
from gantry.runtime import endpoints
from warehouse.client import connect, parse_dsn
from warehouse.schema import EVENT_TABLES

log = logging.getLogger(__name__)

STAGE = "warehouse-sink"
GROUP_ID = "gantry-warehouse-sink"
TOPICS = tuple(t.topic for t in EVENT_TABLES)
_BY_TOPIC = {t.topic: t for t in EVENT_TABLES}
INSERT_SETTINGS = {
    "date_time_input_format": "best_effort",
    "input_format_null_as_default": "1",
    "deduplicate_blocks_in_dependent_materialized_views": "1",
}
_MAX_BACKOFF_S = 10.0


@dataclass
class PendingInsert:
    """The rows of one table in one batch, with the token that makes its retry a no-op."""

    table: str
    rows: list[bytes]
    token: str

    def body(self) -> bytes:
        return b"\n".join(self.rows) + b"\n"


@dataclass
class _TableBuffer:
    rows: list[bytes] = field(default_factory=list)
    # (topic, partition) -> [first offset, last offset] of the messages in ``rows``
    ranges: dict[tuple[str, int], list[int]] = field(default_factory=dict)


class Batch:
    """Decoded rows waiting for the warehouse; pure bookkeeping, no I/O."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._tables: dict[str, _TableBuffer] = defaultdict(_TableBuffer)
        self._messages = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        """Messages taken since the last drain, rows and dead letters alike."""
        return self._messages

    def add(self, topic: str, partition: int, offset: int, raw: bytes | None, now: float) -> DeadLetter | None:
        """Buffer one message; a message that does not decode comes back as a dead letter.

        Dead letters count towards the batch too: their offsets are committed with it.
        """
        self._messages += 1
        if self._opened_at is None:
            self._opened_at = now
        target = _BY_TOPIC.get(topic)
        if target is None:
            return dead_letter(raw, f"no warehouse table for topic {topic!r}", stage=STAGE, source_topic=topic,
                               partition=partition, offset=offset)  # fmt: skip
        try:
            event = decode(target.model, raw)
        except InvalidEvent as exc:
            return dead_letter(raw, str(exc), stage=STAGE, source_topic=topic, partition=partition, offset=offset)
        buffer = self._tables[target.table.name]
        buffer.rows.append(event.model_dump_json().encode())
        span = buffer.ranges.setdefault((topic, partition), [offset, offset])
        span[0], span[1] = min(span[0], offset), max(span[1], offset)
        return None

    def due(self, now: float) -> bool:
        return self._messages >= self.max_rows or (
            self._opened_at is not None and now - self._opened_at >= self.max_seconds
        )

    def drain(self) -> list[PendingInsert]:
        pending = [
            PendingInsert(name, buffer.rows, insert_token(name, buffer.ranges))
            for name, buffer in self._tables.items()
            if buffer.rows
        ]
        self._tables.clear()
        self._messages = 0
        self._opened_at = None
        return pending


def insert_token(table: str, ranges: dict[tuple[str, int], list[int]]) -> str:
    """The same messages give the same token, whatever order they arrived in."""
    spans = sorted(f"{topic}:{partition}:{first}-{last}" for (topic, partition), (first, last) in ranges.items())
    return stable_id(table, *spans)


def write(client: Client, pending: Iterable[PendingInsert]) -> int:
    """Insert each table's rows; returns the rows written. Raises if the warehouse refuses."""
    written = 0
    for insert in pending:
        client.raw_insert(
            insert.table,
            insert_block=insert.body(),
            fmt="JSONEachRow",
            settings=INSERT_SETTINGS | {"insert_deduplication_token": insert.token},
        )
        MESSAGES_OUT.labels(STAGE, insert.table).inc(len(insert.rows))
        written += len(insert.rows)
    return written


class Sink:
    """The consume → batch → insert → commit loop."""

    def __init__(
        self,
        client: Client,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        batch_rows: int,
        batch_seconds: float,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.producer = producer
        self.batch = Batch(batch_rows, batch_seconds)
        self.healthy = True
        self.rows_written = 0

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set; an unflushed batch is left uncommitted and will be replayed."""
        while not stop.is_set():
            self.poll_once()
            if self.batch.due(time.monotonic()):
                self.flush(stop)

    def poll_once(self, timeout_ms: int = 200) -> None:
        wait = min(timeout_ms, int(self.batch.max_seconds * 1000))
        records = self.consumer.poll(timeout_ms=wait, max_records=self.batch.max_rows)
        now = time.monotonic()
        for tp, messages in records.items():
            MESSAGES_IN.labels(STAGE, tp.topic).inc(len(messages))
            for message in messages:
                letter = self.batch.add(tp.topic, tp.partition, message.offset, message.value, now)
                if letter is not None:
                    ERRORS.labels(STAGE, "invalid_event").inc()
                    send_dead_letter(self.producer, letter)

    def flush(self, stop: threading.Event | None = None) -> bool:
        """Write the batch, then commit; retry the write with backoff while the warehouse fails."""
        pending = self.batch.drain()
        backoff = 0.5
        while True:
            try:
                self.rows_written += write(self.client, pending)
                break
            except Exception as exc:  # the warehouse is down or refused: keep the batch, retry
                self.healthy = False
                ERRORS.labels(STAGE, "insert_failed").inc()
                log.warning("insert failed, retrying in %.1fs: %s", backoff, exc)
                if stop is not None and stop.wait(backoff):
                    return False
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        self.healthy = True
        self.producer.flush()  # dead letters are safe before their offsets are committed
        try:
            self.consumer.commit()
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on; the new owner replays these rows and the warehouse drops repeats.
            log.warning("offset commit failed after a successful insert: %s", exc)
        return True


def run_sink(config: GantryConfig, health_port: int) -> None:
    """``gantry warehouse sink``: run until SIGTERM/SIGINT."""
    where = endpoints(config)
    client = connect(where.warehouse_dsn, config.warehouse.database)
    consumer = kafka.consumer(where.bootstrap_servers, GROUP_ID, TOPICS)
    producer = kafka.producer(where.bootstrap_servers)
    sink = Sink(client, consumer, producer, config.warehouse.batch_rows, config.warehouse.batch_seconds)
    health = serve_health(health_port, ready=lambda: sink.healthy)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("sink: %s -> %s, health on :%d", ", ".join(TOPICS), parse_dsn(where.warehouse_dsn).redacted(),
             health.server_port)  # fmt: skip
    try:
        sink.run(stop)
    finally:
        consumer.close(autocommit=False)
        producer.close()
        health.shutdown()
