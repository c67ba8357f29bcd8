"""The sink against a real broker and warehouse: batches land, poison and refused rows are dead-lettered,
an unreachable warehouse is waited for, and nothing is duplicated."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from datetime import date
from decimal import Decimal

import pytest
from kafka import KafkaConsumer, TopicPartition
from waiting import wait_until
from warehouse_helpers import PYTHON_CLI, charge, cli_env, hit, reads

from gantry import kafka, topics
from gantry.broker import free_port
from gantry.config import GantryConfig, RetentionConfig
from gantry.events import DeadLetter, ZoneCharge, decode, encode
from gantry.processes import stop
from warehouse.batch import Batch, Message
from warehouse.client import connect
from warehouse.migrations import migrate
from warehouse.sink import TOPICS, Sink
from warehouse.writer import Writer, write

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    producer = kafka.producer(bootstrap)
    for payload in payloads:
        producer.send(topic, value=payload)
    producer.flush()
    producer.close()


def counts(client, camera: str) -> tuple[int, int, int]:
    """(rows stored, rows after FINAL, distinct read ids) for one camera's reads."""
    row = client.query(
        "SELECT (SELECT count() FROM plate_reads WHERE camera_id = {c:String}),"
        " (SELECT count() FROM plate_reads FINAL WHERE camera_id = {c:String}),"
        " (SELECT uniqExactMerge(reads) FROM camera_counts_1m WHERE camera_id = {c:String})",
        parameters={"c": camera},
    ).result_rows[0]
    return tuple(row)


def sink_for(client, broker: str, batch_rows: int = 500) -> Sink:
    consumer = kafka.consumer(broker, f"test-{uuid.uuid4().hex}", TOPICS)
    return Sink(client, consumer, kafka.producer(broker), batch_rows=batch_rows, batch_seconds=0.5)


def past_the_backlog(sink: Sink) -> Sink:
    """Join the sink's group and start it at the end of every partition, so it skips what other
    tests left on the shared broker (a fresh group would read it all from the beginning)."""
    deadline = time.monotonic() + 60
    while not sink.consumer.assignment() and time.monotonic() < deadline:
        sink.consumer.poll(timeout_ms=200)
    partitions = list(sink.consumer.assignment())
    sink.consumer.seek_to_end(*partitions)
    for tp in partitions:
        sink.consumer.position(tp)  # resolve the end now, before the test produces
    return sink


def drain(sink: Sink, until, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        sink.poll_once()
        sink.step(time.monotonic())


def test_replayed_batch_after_a_crash_adds_no_rows(warehouse, broker):
    """Insert without commit (the crash), then a new sink replays from the last commit."""
    migrate(warehouse, RetentionConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    produced = reads(camera, 1200)
    produce(broker, topics.PLATE_READS, [encode(r) for r in produced])
    produce(broker, topics.HOTLIST_HITS, [encode(hit(r)) for r in produced[:10]])

    group = f"test-{uuid.uuid4().hex}"
    crashed = Sink(warehouse, kafka.consumer(broker, group, TOPICS), kafka.producer(broker), 100_000, 60)
    deadline = time.monotonic() + 30
    while len(crashed.batch) < 1210 and time.monotonic() < deadline:
        crashed.poll_once()
    # written, but the process dies before committing
    write(warehouse, crashed.batch.drain())
    crashed.consumer.close(autocommit=False)

    restarted = Sink(warehouse, kafka.consumer(broker, group, TOPICS), kafka.producer(broker), 250, 0.5)
    drain(restarted, lambda: restarted.rows_written >= 1210)
    restarted.consumer.close(autocommit=False)

    stored, final, distinct = counts(warehouse, camera)
    assert final == distinct == 1200
    # Replayed batches cut like the first are dropped by their tokens; others are stored twice
    # until FINAL or a background merge (which may already have run) collapses them.
    assert 1200 <= stored <= 2400
    warehouse.command("OPTIMIZE TABLE plate_reads FINAL")
    assert counts(warehouse, camera)[0] == 1200
    hits = warehouse.command("SELECT count() FROM hotlist_hits FINAL WHERE camera_id = {c:String}", parameters={"c": camera})
    assert hits == 10


def test_identical_retry_is_dropped_by_its_token(warehouse, broker):
    migrate(warehouse, RetentionConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    batch = Batch(10_000, 60)
    batch.extend([Message(topics.PLATE_READS, 0, o, encode(r)) for o, r in enumerate(reads(camera, 50))], now=0)
    drained = batch.drain()
    write(warehouse, drained)
    write(warehouse, drained)
    assert counts(warehouse, camera)[0] == 50  # stored rows, before any merge


def test_new_messages_at_old_offsets_are_stored_after_a_broker_reset(warehouse, broker):
    """A broker that lost its topics (memory storage restarted, a topic recreated) numbers new
    messages from offset 0 again: the same offsets with other messages are not a retry."""
    migrate(warehouse, RetentionConfig())
    before, after = (f"cam-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for camera in (before, after):
        batch = Batch(10_000, 60)
        batch.extend([Message(topics.PLATE_READS, 0, o, encode(r)) for o, r in enumerate(reads(camera, 50))], now=0)
        write(warehouse, batch.drain())
    assert (counts(warehouse, before)[0], counts(warehouse, after)[0]) == (50, 50)


def test_poison_message_goes_to_dead_letters_and_sink_goes_on(warehouse, broker):
    migrate(warehouse, RetentionConfig())
    kafka.ensure_topics(GantryConfig(), broker)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    good = reads(camera, 20)
    poison = b'{"v": 1, "read_id": "x", "camera_id": "%s", "ts": "yesterday"}' % camera.encode()
    sink = past_the_backlog(sink_for(warehouse, broker))
    produce(broker, topics.PLATE_READS, [encode(r) for r in good[:10]] + [poison] + [encode(r) for r in good[10:]])
    letters = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition(topics.DEAD_LETTERS, p) for p in letters.partitions_for_topic(topics.DEAD_LETTERS)]
    letters.assign(partitions)  # no group to join: reading the topic from the start is all it takes
    letters.seek_to_beginning(*partitions)
    found: list[DeadLetter] = []

    def stored_and_dead_lettered() -> bool:  # the poison may sit in a partition the sink reaches last
        for batch in letters.poll(timeout_ms=100).values():
            found.extend(d for m in batch if camera in (d := decode(DeadLetter, m.value)).payload)
        return counts(warehouse, camera)[1] == 20 and bool(found)

    drain(sink, stored_and_dead_lettered, timeout=60)
    letters.close()
    assert counts(warehouse, camera)[1] == 20
    assert found and found[0].source_topic == topics.PLATE_READS
    assert found[0].stage == "warehouse-sink" and "ts" in found[0].reason


def test_killed_and_restarted_sink_process_loses_and_duplicates_nothing(served_dsn, broker, tmp_path, database):
    """`gantry warehouse sink` killed with SIGKILL mid-stream, then started again."""
    client = connect(served_dsn, database)
    migrate(client, RetentionConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    produced = reads(camera, 6000)
    env = cli_env(
        tmp_path,
        GANTRY_BROKER__BOOTSTRAP_SERVERS=broker,
        GANTRY_WAREHOUSE__DSN=served_dsn,
        GANTRY_WAREHOUSE__DATABASE=database,
        GANTRY_WAREHOUSE__BATCH_ROWS="300",
        GANTRY_WAREHOUSE__BATCH_SECONDS="0.2",
    )
    def start() -> subprocess.Popen:
        return subprocess.Popen([*PYTHON_CLI, "sink"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = start()
    try:
        feeder = threading.Thread(target=produce, args=(broker, topics.PLATE_READS, [encode(r) for r in produced]))
        feeder.start()
        wait_until(lambda: counts(client, camera)[0] >= 900, 60, "the first sink to write some batches")
        first.kill()
        first.wait()
        feeder.join()
        second = start()
        try:
            wait_until(lambda: counts(client, camera)[2] == 6000, 90, "the restarted sink to catch up")
        finally:
            stop(second)
    finally:
        stop(first)
    _, final, distinct = counts(client, camera)
    assert final == distinct == 6000
    client.command("OPTIMIZE TABLE plate_reads FINAL")
    assert counts(client, camera)[0] == 6000
    client.command(f"DROP DATABASE `{database}`", use_database=False)


def dead_letters_about(broker: str, marker: str, expected: int, timeout: float = 20) -> list[DeadLetter]:
    letters = kafka.consumer(broker, f"test-{uuid.uuid4().hex}", [topics.DEAD_LETTERS])
    found: list[DeadLetter] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        for batch in letters.poll(timeout_ms=500).values():
            found += [d for m in batch if marker in (d := decode(DeadLetter, m.value)).payload]
    letters.close()
    return found


def test_rows_the_warehouse_refuses_are_dead_lettered_and_the_rest_inserted(warehouse, broker):
    """A charge too large for Decimal(12, 2) passes the event model but not the table."""
    migrate(warehouse, RetentionConfig())
    zone = f"zone-{uuid.uuid4().hex[:8]}"
    charges = [charge(zone, f"PL{i:03d}", date(2026, 11, 20)) for i in range(40)]
    for i in (7, 31):
        charges[i] = charges[i].model_copy(update={"amount": Decimal("100000000000.00")})
    produce(broker, topics.ZONE_CHARGES, [encode(c) for c in charges])
    sink = sink_for(warehouse, broker)
    def stored() -> int:
        return warehouse.command("SELECT count() FROM zone_charges FINAL WHERE zone_id = {z:String}",
                                 parameters={"z": zone})  # fmt: skip

    drain(sink, lambda: stored() == 38)
    assert stored() == 38 and sink.healthy
    drain(sink, lambda: False, timeout=1)  # the batch was committed: nothing is retried
    refused = dead_letters_about(broker, zone, expected=2)
    assert sorted(decode(ZoneCharge, d.payload).plate for d in refused) == ["PL007", "PL031"]
    assert all(d.source_topic == topics.ZONE_CHARGES and d.stage == "warehouse-sink" for d in refused)
    assert all("refused the row for zone_charges" in d.reason and "Decimal" in d.reason for d in refused)
    sink.consumer.close(autocommit=False)


def test_an_unreachable_warehouse_is_waited_for_not_dead_lettered(tmp_path, database):
    """`warehouse serve` stops while a batch is due; the insert is retried until it is back."""
    port = free_port()
    def serve() -> subprocess.Popen:
        return subprocess.Popen([*PYTHON_CLI, "serve", "--port", str(port)], env=cli_env(tmp_path), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    server = serve()
    giving_up = threading.Event()
    try:
        wait_until(lambda: connect(f"http://127.0.0.1:{port}", database) is not None, 60, "warehouse serve")
        client = connect(f"http://127.0.0.1:{port}", database)
        migrate(client, RetentionConfig())
        stop(server)
        camera = f"cam-{uuid.uuid4().hex[:8]}"
        batch = Batch(100, 60)
        batch.extend([Message(topics.PLATE_READS, 0, o, encode(r)) for o, r in enumerate(reads(camera, 30))], now=0)
        writer = Writer(client, giving_up)
        writer.submit(batch.drain())
        wait_until(lambda: not writer.healthy, 10, "the writer to notice the warehouse is down")
        assert writer.busy and not writer.finished()
        server = serve()
        written = writer.collect()
        assert (written.rows, written.refused) == (30, []) and writer.healthy
        assert counts(client, camera)[0] == 30
    finally:
        giving_up.set()
        stop(server)


def test_a_batch_whose_dead_letter_was_not_acknowledged_is_not_committed_but_read_again(
    warehouse, broker, deaf_producer
):
    migrate(warehouse, RetentionConfig())
    kafka.ensure_topics(GantryConfig(), broker)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    sink = past_the_backlog(Sink(warehouse, kafka.consumer(broker, f"test-{uuid.uuid4().hex}", TOPICS),
                                 deaf_producer, batch_rows=500, batch_seconds=0.5))
    sink.consumer.commit()  # the end of every partition: where a rewind goes back to
    out = kafka.producer(broker)
    for r in reads(camera, 5):
        out.send(topics.PLATE_READS, value=encode(r))
    poison = b'{"v": 1, "read_id": "x", "camera_id": "%s", "ts": "yesterday"}' % camera.encode()
    sent = out.send(topics.PLATE_READS, value=poison).get(timeout=10)
    out.close()
    poisoned = TopicPartition(topics.PLATE_READS, sent.partition)

    drain(sink, lambda: counts(warehouse, camera)[1] == 5, timeout=60)
    drain(sink, lambda: False, timeout=6)  # settles whose dead letter fails, again and again
    assert counts(warehouse, camera)[1] == 5
    assert sink.consumer.committed(poisoned) <= sent.offset  # the poison is not committed past

    sink.producer = kafka.producer(broker)  # the broker answers again: the batch read again goes through
    letters = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition(topics.DEAD_LETTERS, p) for p in letters.partitions_for_topic(topics.DEAD_LETTERS)]
    letters.assign(partitions)
    letters.seek_to_beginning(*partitions)
    found: list[DeadLetter] = []

    def dead_lettered_and_committed() -> bool:
        for batch in letters.poll(timeout_ms=100).values():
            found.extend(d for m in batch if camera in (d := decode(DeadLetter, m.value)).payload)
        return bool(found) and sink.consumer.committed(poisoned) > sent.offset

    drain(sink, dead_lettered_and_committed, timeout=60)
    letters.close()
    sink.producer.close()
    assert found and found[0].offset == sent.offset
    assert sink.consumer.committed(poisoned) > sent.offset
    assert counts(warehouse, camera)[1] == 5
