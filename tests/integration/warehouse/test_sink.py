"""The sink against a real broker and warehouse: batches land, poison is dead-lettered, no duplicates."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest
from warehouse_helpers import PYTHON_CLI, cli_env, hit, reads, stop, wait_until

from gantry import kafka, topics
from gantry.config import RetentionConfig
from gantry.events import DeadLetter, decode, encode
from warehouse.client import connect
from warehouse.migrations import migrate
from warehouse.sink import TOPICS, Sink

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


def drain(sink: Sink, until, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        sink.poll_once()
        if sink.batch.due(time.monotonic()):
            sink.flush()


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
    from warehouse.sink import write

    write(warehouse, crashed.batch.drain())
    crashed.consumer.close(autocommit=False)

    restarted = Sink(warehouse, kafka.consumer(broker, group, TOPICS), kafka.producer(broker), 250, 0.5)
    drain(restarted, lambda: restarted.rows_written >= 1210)
    restarted.consumer.close(autocommit=False)

    stored, final, distinct = counts(warehouse, camera)
    assert final == distinct == 1200
    assert stored in (1200, 2400)  # replays cut differently are collapsed by FINAL and by merges
    warehouse.command("OPTIMIZE TABLE plate_reads FINAL")
    assert counts(warehouse, camera)[0] == 1200
    hits = warehouse.command("SELECT count() FROM hotlist_hits FINAL WHERE camera_id = {c:String}", parameters={"c": camera})
    assert hits == 10


def test_identical_retry_is_dropped_by_its_token(warehouse, broker):
    migrate(warehouse, RetentionConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    from warehouse.sink import Batch, write

    batch = Batch(10_000, 60)
    for offset, read in enumerate(reads(camera, 50)):
        batch.add(topics.PLATE_READS, 0, offset, encode(read), now=0)
    pending = batch.drain()
    write(warehouse, pending)
    write(warehouse, pending)
    assert counts(warehouse, camera)[0] == 50  # stored rows, before any merge


def test_poison_message_goes_to_dead_letters_and_sink_goes_on(warehouse, broker):
    migrate(warehouse, RetentionConfig())
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    good = reads(camera, 20)
    poison = b'{"v": 1, "read_id": "x", "camera_id": "%s", "ts": "yesterday"}' % camera.encode()
    produce(broker, topics.PLATE_READS, [encode(r) for r in good[:10]] + [poison] + [encode(r) for r in good[10:]])
    letters = kafka.consumer(broker, f"test-{uuid.uuid4().hex}", [topics.DEAD_LETTERS])
    sink = sink_for(warehouse, broker)
    drain(sink, lambda: counts(warehouse, camera)[1] == 20)
    assert counts(warehouse, camera)[1] == 20
    found = []
    deadline = time.monotonic() + 20
    while not found and time.monotonic() < deadline:
        for batch in letters.poll(timeout_ms=500).values():
            found += [d for m in batch if camera in (d := decode(DeadLetter, m.value)).payload]
    assert found and found[0].source_topic == topics.PLATE_READS
    assert found[0].stage == "warehouse-sink" and "ts" in found[0].reason
    letters.close()


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
    start = lambda: subprocess.Popen([*PYTHON_CLI, "sink"], env=env, cwd=tmp_path,
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
