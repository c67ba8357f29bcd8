"""A worker's copy of a compacted topic (stream_jobs.runtime.compacted) against the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic

from gantry.events import HotlistEntry, encode
from gantry.kafka import create_missing, producer
from stream_jobs.registers import PlateIndex, Register
from stream_jobs.runtime.compacted import CompactedFeed, RegisterFeed

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


def test_a_register_feed_and_export_go_past_keys_and_values_that_are_no_entry(broker):
    """Anyone who can write to a register's topic can write bytes that are no entry: a key that is
    not UTF-8, with or without a value, and a value that does not parse. Every worker must still
    load the register (a reader stopped by it would stop screening on every restart), and the
    entries around them must count."""
    topic = f"register-{uuid.uuid4().hex[:8]}"
    create_missing(broker, [NewTopic(topic, 1, 1)])
    first, second = HotlistEntry(plate="AB12CDE", list="stolen"), HotlistEntry(plate="XY99ZZZ", list="wanted")
    send = producer(broker)
    for key, value in [(first.key.encode(), encode(first)), (b"\xff\xfe", None), (b"\xc3(", encode(second)),
                       (b"\xff", b"not an entry"), (second.key.encode(), encode(second))]:
        send.send(topic, key=key, value=value)
    send.flush()

    async def run() -> list[HotlistEntry]:
        index: PlateIndex[HotlistEntry] = PlateIndex()
        feed = RegisterFeed(broker, topic, HotlistEntry, index)
        await asyncio.wait_for(feed.start(), timeout=30)
        send.send(topic, key=first.key.encode(), value=None).get(timeout=10)  # tailed after the load
        for _ in range(100):
            if len(index) == 1:
                break
            await asyncio.sleep(0.1)
        await feed.stop()
        return index.entries()

    assert asyncio.run(run()) == [second]
    send.close()
    assert Register(topic, HotlistEntry, ("plate", "list"), required=("plate", "list")).current(broker) == [second]
