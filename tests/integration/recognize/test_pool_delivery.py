"""The recognizer pool commits a batch of frames only once the broker acknowledged every read and
dead letter it sent; otherwise the batch is read again."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import TopicPartition
from kafka.admin import NewTopic

from gantry import topics
from gantry.kafka import consumer, create_missing, producer
from recognize import driver

pytestmark = pytest.mark.integration


def poll_offsets(source, count: int, timeout_s: float = 30) -> list[int]:
    offsets, deadline = [], time.monotonic() + timeout_s
    while len(offsets) < count and time.monotonic() < deadline:
        for messages in source.poll(200).values():
            offsets += [m.offset for m in messages]
    return offsets


def test_a_batch_whose_sends_failed_is_not_committed_and_is_read_again(broker, deaf_producer) -> None:
    bootstrap = broker.bootstrap_servers
    frames = f"test-pool-frames-{uuid.uuid4().hex[:8]}"
    create_missing(bootstrap, [NewTopic(frames, 1, 1)])
    working = producer(bootstrap)
    for n in range(3):
        working.send(frames, value=b"frame-%d" % n)
    working.flush()
    source = consumer(bootstrap, f"test-{uuid.uuid4().hex}", [frames])
    partition = TopicPartition(frames, 0)
    try:
        assert poll_offsets(source, 3) == [0, 1, 2]
        failed = [deaf_producer.send(topics.PLATE_READS, value=b"a read the broker never acknowledges")]
        assert not driver.settle(source, deaf_producer, failed, {(frames, 0): 3}, {})
        assert source.committed(partition) is None
        assert poll_offsets(source, 3) == [0, 1, 2]  # the batch again

        acked = [working.send(frames, value=b"a read the broker acknowledges")]
        assert driver.settle(source, working, acked, {(frames, 0): 3}, {})
        assert source.committed(partition) == 3
    finally:
        source.close()
        working.close()
