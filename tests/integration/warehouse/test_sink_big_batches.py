"""Batches too big for the warehouse at once, and dead letters too big for the broker, against a
real broker and warehouse: a backlog over more than 100 days, inserts over the query's memory
limit, one row over it alone, and a message whose dead letter would outgrow the message limit.
None may stop the sink, lose a row or store one twice."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import timedelta

import pytest
from kafka import TopicPartition
from test_sink import counts, dead_letters_about, drain, past_the_backlog, sink_for
from waiting import wait_until
from warehouse_helpers import T0, reads

from gantry import kafka, topics
from gantry.config import GantryConfig, RetentionConfig
from gantry.events import DEAD_LETTER_MAX_BYTES, PlateRead, encode
from gantry.ids import stable_id
from warehouse.batch import Batch, Message
from warehouse.client import connect
from warehouse.migrations import migrate
from warehouse.writer import ROW_ATTEMPTS, Writer, write

pytestmark = pytest.mark.integration

KEPT = RetentionConfig(plate_reads=3650)
"""Backlogs months old outlive the default 90 days' TTL, which would drop rows the tests count."""
MEMORY_LIMIT = "4000000"
"""Bytes a query may use: 64 reads of 200 kB take more at once, 8 of them less (measured on chDB)."""


def backlog(camera: str, days: int, per_day: int) -> list[PlateRead]:
    """Reads over ``days`` distinct days (``plate_reads`` partitions), interleaved as an import sends them."""
    return [
        PlateRead(read_id=stable_id(camera, i), camera_id=camera, ts=T0 - timedelta(days=i % days, seconds=i),
                  plate="AB12CDE", confidence=0.9)
        for i in range(days * per_day)
    ]  # fmt: skip


def produce_to(bootstrap: str, partition: int, payloads: list[bytes]) -> int:
    """Send to one partition of ``plate_reads``, in order; the last message's offset."""
    producer = kafka.producer(bootstrap)
    sent = [producer.send(topics.PLATE_READS, value=p, partition=partition) for p in payloads]
    producer.flush()
    producer.close()
    return sent[-1].get(timeout=10).offset


def test_a_backlog_over_more_than_100_days_in_one_batch_lands_once_and_the_sink_goes_on(warehouse, broker):
    """300 reads over 150 days, one batch: 150 partitions in one insert are over ClickHouse's
    ``max_partitions_per_insert_block`` (100), which fails that insert however often it is tried."""
    migrate(warehouse, KEPT)
    kafka.ensure_topics(GantryConfig(), broker)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    old = backlog(camera, days=150, per_day=2)
    sink = past_the_backlog(sink_for(warehouse, broker, batch_rows=len(old)))
    sink.batch.max_seconds = 10  # the batch is due when it holds the whole backlog, not before
    produce_to(broker, 0, [encode(r) for r in old])
    drain(sink, lambda: counts(warehouse, camera)[2] == 300, timeout=60)
    assert counts(warehouse, camera) == (300, 300, 300)  # stored once each, before any merge
    days = warehouse.command("SELECT uniqExact(toDate(ts)) FROM plate_reads WHERE camera_id = {c:String}",
                             parameters={"c": camera})  # fmt: skip
    assert days == 150

    later = reads(f"{camera}-later", 10)
    last = produce_to(broker, 0, [encode(r) for r in later])
    drain(sink, lambda: counts(warehouse, f"{camera}-later")[1] == 10, timeout=30)
    drain(sink, lambda: (sink.consumer.committed(TopicPartition(topics.PLATE_READS, 0)) or 0) > last, timeout=10)
    assert counts(warehouse, f"{camera}-later")[1] == 10 and sink.healthy
    assert sink.consumer.committed(TopicPartition(topics.PLATE_READS, 0)) > last
    assert counts(warehouse, camera)[0] == 300
    sink.consumer.close(autocommit=False)


def tight_memory(warehouse_dsn: str, database: str):
    client = connect(warehouse_dsn, database)
    client.set_client_setting("max_memory_usage", MEMORY_LIMIT)
    return client


def large_read(camera: str, offset: int, image_ref_bytes: int = 200_000) -> Message:
    return Message(topics.PLATE_READS, 0, offset, encode(PlateRead(
        read_id=stable_id(camera, offset), camera_id=camera, ts=T0 + timedelta(seconds=offset), plate="AB12CDE",
        confidence=0.9, image_ref=f"{offset:06d}".ljust(image_ref_bytes, "x"))))  # fmt: skip


def test_an_insert_over_the_memory_limit_is_split_until_it_fits_and_a_retry_adds_nothing(
    warehouse, warehouse_dsn, database
):
    migrate(warehouse, KEPT)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    batch = Batch(1000, 60)
    batch.extend([large_read(camera, o) for o in range(64)], now=0)
    drained = batch.drain()
    client = tight_memory(warehouse_dsn, database)
    written = write(client, drained)
    assert (written.rows, written.refused) == (64, [])
    assert counts(warehouse, camera) == (64, 64, 64)
    write(client, drained)  # the same batch again (a crash before the commit): cut the same way, dropped
    assert counts(warehouse, camera)[0] == 64
    client.close()


def test_a_row_over_the_memory_limit_alone_is_dead_lettered_with_the_reason_after_a_few_tries(
    warehouse, warehouse_dsn, database
):
    """Without a bound the writer would wait on that row for good, and with it every table."""
    migrate(warehouse, KEPT)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    huge = large_read(camera, 5, image_ref_bytes=8_000_000)
    messages = [huge if o == 5 else large_read(camera, o) for o in range(8)]
    batch = Batch(1000, 60)
    batch.extend(messages, now=0)
    stop = threading.Event()
    writer = Writer(tight_memory(warehouse_dsn, database), stop)
    writer.submit(batch.drain())
    try:
        wait_until(writer.finished, 60, "the writer to give up on the row")
        written = writer.collect()
    finally:
        stop.set()
        writer.close()
    assert written.rows == 7 and counts(warehouse, camera)[1] == 7 and writer.healthy
    [letter] = written.refused
    assert (letter.source_topic, letter.partition, letter.offset) == (topics.PLATE_READS, 0, 5)
    assert f"alone {ROW_ATTEMPTS} times" in letter.reason and "memory limit" in letter.reason.lower()
    # 8 MB of payload: cut to fit a message, with what identifies the original
    assert len(encode(letter)) <= DEAD_LETTER_MAX_BYTES
    assert letter.payload.startswith(huge.value[:1000].decode())
    assert letter.payload.endswith(f"{len(huge.value)} bytes, sha256 {hashlib.sha256(huge.value).hexdigest()}]")


def test_a_message_whose_dead_letter_would_outgrow_the_message_limit_is_dead_lettered_cut(warehouse, broker):
    """2 MiB of undecodable bytes: escaped as ``\\xff`` and again for JSON they make a 10 MiB
    letter, over the producer's 8 MiB limit; unsent, it would hold the sink on that batch."""
    migrate(warehouse, RetentionConfig())
    kafka.ensure_topics(GantryConfig(), broker)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    poison = b'{"v": 1, "camera_id": "%s", "junk": "' % camera.encode() + b"\xff" * (2 * 1024 * 1024) + b'"}'
    sink = past_the_backlog(sink_for(warehouse, broker))
    after = reads(camera, 5)
    last = produce_to(broker, 1, [poison, *(encode(r) for r in after)])
    def committed() -> int:
        return sink.consumer.committed(TopicPartition(topics.PLATE_READS, 1)) or 0

    drain(sink, lambda: counts(warehouse, camera)[1] == 5 and committed() > last, timeout=60)
    assert counts(warehouse, camera)[1] == 5 and committed() > last  # past the poison: the sink went on
    [letter] = dead_letters_about(broker, camera, expected=1, timeout=30)
    assert letter.reason.startswith("invalid PlateRead") and letter.stage == "warehouse-sink"
    assert len(encode(letter)) <= DEAD_LETTER_MAX_BYTES
    assert letter.payload.startswith(f'{{"v": 1, "camera_id": "{camera}", "junk": "\\xff\\xff')
    assert letter.payload.endswith(f"{len(poison)} bytes, sha256 {hashlib.sha256(poison).hexdigest()}]")
    sink.consumer.close(autocommit=False)
