"""What a batch produces, sent as whole record batches (see :class:`Outbox`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

PLACED_KEYS = 100_000  # keyed partitions an outbox remembers
NO_HEADERS: list[tuple[str, bytes]] = []  # never changed: the builder only reads it
RECORD_BATCH_BYTES = 512 * 1024  # the broker handles a few large record batches for less than many small ones


class Outbox:
    """The messages a batch produces, appended straight into record batches per topic partition.

    Sending messages one by one costs the producer a future, a partition lookup and an accumulator
    entry each, twice what the jobs' own rules cost per output; whole record batches cost a
    fraction of it. Keyed messages go to the partition the default (murmur2) partitioner picks,
    like every other producer of these topics, so plates stay together.

    The producer takes one record batch per partition at a time and waits for the broker before
    the next, so full batches are handed over in the background, in order, while the handler
    goes on with its batch (and the next).
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitioner = DefaultPartitioner()
        self.partitions: dict[str, list[int]] = {}
        self.placed: dict[tuple[str, bytes], int] = {}
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.full: list[tuple[str, int, BatchBuilder]] = []
        self.handing_over: asyncio.Future | None = None  # the last send()'s hand-over to the producer

    async def put(self, topic: str, value: bytes | None, *, key: bytes | None = None, partition: int | None = None,
                  headers: list[tuple[str, bytes]] | None = None, timestamp_ms: int | None = None) -> None:
        """Add a message; ``timestamp_ms`` None stamps it with the time of sending."""
        if partition is None:
            partition = self.placed.get((topic, key)) if key is not None else None
            if partition is None:
                partition = await self._place(topic, key)
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[topic, partition] = self.producer.create_batch()
        headers = headers or NO_HEADERS  # the record builder takes lists only
        if batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:  # full: start another
            self.full.append((topic, partition, batch))
            batch = self.open[topic, partition] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:
                raise ValueError(f"a message for {topic} is larger than a whole record batch")

    async def _place(self, topic: str, key: bytes | None) -> int:
        """The partition of a keyed message, remembered: most keys (segments, zones) recur."""
        if topic not in self.partitions:
            self.partitions[topic] = sorted(await self.producer.partitions_for(topic))
        partition = self.partitioner(key, self.partitions[topic], self.partitions[topic])
        if key is not None:
            if len(self.placed) >= PLACED_KEYS:
                self.placed.clear()
            self.placed[topic, key] = partition
        return partition

    def send(self) -> Awaitable[None]:
        """Send everything put so far; awaiting the result waits until the broker has acknowledged it."""
        batches = [*self.full, *((topic, partition, batch) for (topic, partition), batch in self.open.items())]
        self.full, self.open = [], {}
        self.handing_over = asyncio.ensure_future(self._hand_over(self.handing_over, batches))
        return self._acknowledged(self.handing_over)

    async def _hand_over(self, previous: asyncio.Future | None,
                         batches: list[tuple[str, int, BatchBuilder]]) -> list[asyncio.Future]:
        if previous is not None:
            await previous  # the earlier messages of each partition go first
        return [await self.producer.send_batch(batch, topic, partition=partition) for topic, partition, batch in batches]

    @staticmethod
    async def _acknowledged(handing_over: asyncio.Future) -> None:
        await asyncio.gather(*await handing_over)
