"""The batch consumers' outbox against the real broker: where messages land, in what order."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner import murmur2

from gantry.kafka import create_missing
from stream_jobs.runtime.outbox import Outbox

pytestmark = pytest.mark.integration
PARTITIONS = 4


def _read_all(broker: str, topic: str, expected: int) -> dict[int, list[tuple[bytes | None, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, auto_offset_reset="earliest",
                             consumer_timeout_ms=5_000, fetch_max_wait_ms=50)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    found: dict[int, list[tuple[bytes | None, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for n, record in enumerate(consumer, start=1):
        found[record.partition].append((record.key, record.value))
        if n == expected:
            break
    consumer.close()
    return found


def test_keyed_messages_land_where_every_other_producer_puts_them_in_order(broker):
    topic = f"outbox-{uuid.uuid4().hex[:8]}"
    create_missing(broker, [NewTopic(topic, PARTITIONS, 1)])
    plates = [f"AB{n:02d}CDE".encode() for n in range(40)]
    sent = [(plates[n % len(plates)], f"{n:05d}".encode() + b"x" * 400) for n in range(3_000)]  # several batches

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            outbox = Outbox(producer)
            for key, value in sent:
                await outbox.put(topic, value, key=key)
            await outbox.put(topic, b"pinned", partition=2)
            await outbox.send()
        finally:
            await producer.stop()

    asyncio.run(produce())
    found = _read_all(broker, topic, len(sent) + 1)
    assert sum(map(len, found.values())) == len(sent) + 1
    for partition, messages in found.items():
        keyed = [(k, v) for k, v in messages if k is not None]
        # the Java client's default partitioner, which kafka-python and aiokafka producers share
        assert all((murmur2(k) & 0x7FFFFFFF) % PARTITIONS == partition for k, _ in keyed)
        assert keyed == [m for m in sent if (murmur2(m[0]) & 0x7FFFFFFF) % PARTITIONS == partition]
    assert (None, b"pinned") in found[2]
