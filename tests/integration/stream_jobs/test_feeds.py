"""A worker's copy of a compacted topic (stream_jobs.runtime.compacted) against the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic

from gantry.kafka import create_missing, producer
from stream_jobs.runtime.compacted import CompactedFeed

pytestmark = pytest.mark.integration


class Keys(CompactedFeed):
    """Keeps the keys it is given, in order."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        super().__init__(bootstrap_servers)
        self.topic = topic
        self.keys: list[bytes] = []

    def apply(self, record: ConsumerRecord) -> None:
        self.keys.append(record.key)


def test_a_feed_started_before_its_topic_exists_loads_it_once_created_then_tails_it(broker):
    topic = f"feed-{uuid.uuid4().hex[:8]}"

    async def run() -> list[bytes]:
        feed = Keys(broker, topic)
        starting = asyncio.ensure_future(feed.start())
        await asyncio.sleep(1.0)
        assert not feed.loaded.is_set()  # no topic yet: the feed waits for it
        create_missing(broker, [NewTopic(topic, 2, 1)])
        send = producer(broker)
        send.send(topic, key=b"before-load", value=b"1").get(timeout=10)
        await asyncio.wait_for(feed.loaded.wait(), timeout=30)
        await starting
        send.send(topic, key=b"after-load", value=b"2").get(timeout=10)
        send.close()
        for _ in range(100):
            if b"after-load" in feed.keys:
                break
            await asyncio.sleep(0.1)
        await feed.stop()
        return feed.keys

    assert asyncio.run(run()) == [b"before-load", b"after-load"]
