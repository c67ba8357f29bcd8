"""Several producer connections to the broker, each carrying its own share of the partitions.

A Kafka client keeps one produce request in flight per broker connection, and the embedded
broker (Tansu on the durable store) writes the partitions of a request one after another, two
fsynced object writes each: through one connection, a request holding all four partitions of
``plate_reads`` waits for eight writes before the next one may leave (measured on the 2-core VM:
one record to each of four partitions, p50 18.5-20.6 ms through one producer, 11.6 ms through
four, against 7 ms for one partition). With a connection per share of the partitions, those
writes go on side by side, and each camera's endpoint answers sooner.

A partition always goes through the same producer, so the order of its records is kept, and
the partition of a key is the one Kafka's default partitioner picks (murmur2 of the key), so a
read lands where any other producer of the pipeline would put it: the jobs keep a plate's
state per partition.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

_PARTITION_OF = DefaultPartitioner()


class Lanes:
    """``count`` producers, started together (or, where one cannot connect, none)."""

    def __init__(self, producers: list[AIOKafkaProducer]) -> None:
        self.producers = producers

    @classmethod
    async def start(cls, bootstrap_servers: str, count: int, **settings: object) -> Lanes:
        producers = [AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **settings) for _ in range(count)]
        try:
            await asyncio.gather(*(producer.start() for producer in producers))
        except KafkaError:
            await asyncio.gather(*(producer.stop() for producer in producers), return_exceptions=True)
            raise
        return cls(producers)

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        """The broker's answer to come (aiokafka's own send, through the partition's producer)."""
        first = self.producers[0]
        partitions = sorted(await first.partitions_for(topic))
        partition = _PARTITION_OF(key, partitions, partitions)
        return await self.producers[partition % len(self.producers)].send(
            topic, value, key=key, partition=partition
        )

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> object:
        return await (await self.send(topic, value, key))

    def fail_unsent(self, error: KafkaError) -> None:
        """Fail the batches not sent yet. aiokafka has no public way to drop them; failing them is
        what keeps them from reaching the broker after their spooled copies."""
        for producer in self.producers:
            producer._message_accumulator.fail_all(error)

    async def stop(self) -> None:
        await asyncio.gather(*(producer.stop() for producer in self.producers))
