"""The sink: output topics into warehouse tables, in batches, at least once, without duplicates.

Messages are buffered (:mod:`warehouse.batch`) and, when the buffer holds ``batch_rows``
messages or its oldest is ``batch_seconds`` old, decoded and handed to the writer thread
(:mod:`warehouse.writer`), which inserts them while the next batch is consumed and decoded.
A batch's offsets are committed only after the warehouse has acknowledged every table's insert
and the broker every one of its dead letters, so a crash replays it; when a dead letter is not
acknowledged, nothing is committed and the sink reads the batch again (the inserts repeat
harmlessly, see below). The replay does not duplicate rows: an
insert carries a deduplication token made of its topic/partition/offset ranges (an identical
retry is dropped by the server), and where a replayed batch is cut differently the tables'
Replacing engines collapse rows with the same id. A message that does not decode, or a row the
warehouse refuses, goes to the dead-letter topic with the reason; the sink goes on.

Rows of an erased plate timed before its erasure (:mod:`gantry.erasures`) are left out of every
insert: the block-list is caught up before each batch is decoded, so a sink that lagged behind
an erasure, or replays older offsets, cannot put the erased rows back.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time

from clickhouse_connect.driver import Client
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from gantry import kafka
from gantry.config import GantryConfig
from gantry.erasures import BlockList, Follower
from gantry.kafka import delivered, rewind, send_dead_letter
from gantry.observability import ERRORS, MESSAGES_IN, record_lag, serve_health
from gantry.runtime import endpoints
from warehouse.batch import STAGE, Batch, Drained
from warehouse.client import connect, parse_dsn
from warehouse.schema import EVENT_TABLES
from warehouse.writer import WriteAbandoned, Writer

log = logging.getLogger(__name__)

GROUP_ID = "gantry-warehouse-sink"
TOPICS = tuple(t.topic for t in EVENT_TABLES)
_PAUSED_POLL_MS = 10


class Sink:
    """The consume → decode → insert (in the background) → commit loop."""

    def __init__(
        self,
        client: Client,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        batch_rows: int,
        batch_seconds: float,
        erasures: Follower | None = None,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.erasures = erasures
        self.batch = Batch(batch_rows, batch_seconds)
        self.stop = threading.Event()
        self.writer = Writer(client, self.stop)
        self.rows_written = 0

    @property
    def healthy(self) -> bool:
        return self.writer.healthy

    def run(self) -> None:
        """Until :attr:`stop` is set; what is not yet inserted stays uncommitted and is replayed."""
        try:
            while not self.stop.is_set():
                self.poll_once()
                self.step(time.monotonic())
        finally:
            if self.writer.busy:
                self._settle()
            self.writer.close()

    def poll_once(self, timeout_ms: int = 200) -> None:
        """Take messages into the batch; a full batch pauses the partitions (polling keeps the group)."""
        room = self.batch.max_rows - len(self.batch)
        if room <= 0:
            self.consumer.pause(*self.consumer.assignment())
        elif self.consumer.paused():
            self.consumer.resume(*self.consumer.paused())
        wait = _PAUSED_POLL_MS if room <= 0 else min(timeout_ms, int(self.batch.max_seconds * 1000))
        records = self.consumer.poll(timeout_ms=wait, max_records=max(room, 1))
        now = time.monotonic()
        for tp, messages in records.items():
            MESSAGES_IN.labels(STAGE, tp.topic).inc(len(messages))
            self.batch.extend(messages, now)

    def step(self, now: float) -> None:
        """Commit a batch the writer has finished; hand it the next one when that is due."""
        if self.writer.finished():
            self._settle()
        if not self.writer.busy and self.batch.due(now):
            self.writer.submit(self._drain())

    def flush(self) -> None:
        """Insert and commit everything taken so far, waiting for the warehouse."""
        if self.writer.busy:
            self._settle()
        if len(self.batch):
            self.writer.submit(self._drain())
            self._settle()

    def _drain(self) -> Drained:
        """The batch decoded, less the rows the block-list covers (their offsets are committed
        all the same: they are dropped for good)."""
        if self.erasures is None:
            return self.batch.drain()
        self.erasures.catch_up()
        drained = self.batch.drain()
        blocked = self.erasures.blocklist
        if blocked.newest is not None:
            drained.inserts = [kept for pending in drained.inserts if (kept := pending.without(blocked.blocks)).rows]
        return drained

    def _settle(self) -> None:
        try:
            written = self.writer.collect()
        except WriteAbandoned:
            return  # stopping: the batch is replayed by whoever reads these partitions next
        sent = []
        for letter in written.drained.letters:
            ERRORS.labels(STAGE, "invalid_event").inc()
            sent.append(send_dead_letter(self.producer, letter))
        for letter in written.refused:
            ERRORS.labels(STAGE, "refused_by_warehouse").inc()
            sent.append(send_dead_letter(self.producer, letter))
        if not delivered(self.producer, sent):  # dead letters are safe before their offsets are committed
            ERRORS.labels(STAGE, "dead_letter_not_acked").inc()
            self.batch.discard()  # read again too, behind the batch
            rewind(self.consumer)
            return
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in written.drained.commit_offsets.items()
        }
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:
            # The group moved on; the new owner replays these rows and the warehouse drops repeats.
            log.warning("offset commit failed after a successful insert: %s", exc)
        self.rows_written += written.rows
        record_lag(STAGE, self.consumer)


def run_sink(config: GantryConfig, health_port: int) -> None:
    """``gantry warehouse sink``: run until SIGTERM/SIGINT."""
    where = endpoints(config)
    client = connect(where.warehouse_dsn, config.warehouse.database)
    consumer = kafka.consumer(where.bootstrap_servers, GROUP_ID, TOPICS)
    producer = kafka.producer(where.bootstrap_servers)
    erasures = Follower(where.bootstrap_servers, BlockList(config.privacy.pseudonym_key))
    sink = Sink(client, consumer, producer, config.warehouse.batch_rows, config.warehouse.batch_seconds, erasures)
    health = serve_health(health_port, ready=lambda: sink.healthy)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sink.stop.set())
    # What exists now lives as long as the process: the collector need not walk it after every batch.
    gc.freeze()
    log.info("sink: %s -> %s, health on :%d", ", ".join(TOPICS), parse_dsn(where.warehouse_dsn).redacted(),
             health.server_port)  # fmt: skip
    try:
        sink.run()
    finally:
        consumer.close(autocommit=False)
        erasures.close()
        producer.close()
        health.shutdown()
