"""A rebalance that comes while a stateful job is in the middle of a batch loses none of its state.

With the eager protocol a member gives up every partition at a rebalance and may be given the same
ones back. The batch it was handling must not then go on, and be committed, from a state rebuilt
from a changelog that does not yet hold the batch's first records: their changes would be lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Mapping

import pytest
from aiokafka import ConsumerRecord
from jobs_helpers import read_topic
from kafka import KafkaProducer
from kafka.admin import NewTopic

from gantry.kafka import create_missing
from stream_jobs.runtime.consumer import paced
from stream_jobs.runtime.state import StatefulBatchConsumer

pytestmark = pytest.mark.integration
PARTITIONS = 4
READS = 4_000


class Tally(StatefulBatchConsumer[Counter]):
    """Counts each key's records: a stand-in for a plate's history, slow enough to be caught mid-batch."""

    max_records = 2_000

    def __init__(self, broker: str, topic: str) -> None:
        super().__init__(broker)
        self.group_id, self.sources, self.changelog = f"{topic}-tally", (topic,), f"{topic}-tally-changelog"
        self.changed: dict[int, set[bytes]] = {}

    async def handle(self, records: list[ConsumerRecord]) -> None:
        async for record in paced(records):
            state = await self.state_of(record.partition)
            state[record.key] += 1
            self.changed.setdefault(record.partition, set()).add(record.key)
            await asyncio.sleep(0.001)
        await self.save()

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> Counter:
        self.changed.pop(partition, None)
        return _tallies(entries.values())

    def changes(self, state: Counter) -> dict[bytes, bytes]:
        partition = next(p for p, s in self.states.items() if s is state)
        return {key: key + b"=" + str(state[key]).encode() for key in self.changed.pop(partition, ())}


def _tallies(entries) -> Counter:
    """The latest count of each key among changelog values ``KEY=COUNT``."""
    return Counter({key: int(count) for key, count in (entry.split(b"=") for entry in entries)})


def test_a_member_joining_mid_batch_loses_no_count(broker):
    topic = f"tally-{uuid.uuid4().hex[:8]}"
    changelog = f"{topic}-tally-changelog"
    create_missing(broker, [NewTopic(topic, PARTITIONS, 1), NewTopic(changelog, PARTITIONS, 1)])
    keys = [f"K{n:03d}".encode() for n in range(50)]
    send = KafkaProducer(bootstrap_servers=broker)
    for n in range(READS):
        send.send(topic, key=keys[n % len(keys)], value=b"read")
    send.flush()
    send.close()

    def counted(entries: list[bytes]) -> int:
        return sum(_tallies(entries).values())

    async def run() -> Counter:
        first, second = Tally(broker, topic), Tally(broker, topic)
        await first.start()
        while not first.states:  # the first member is handling its first batch
            await asyncio.sleep(0.05)
        await second.start()  # the group rebalances while that batch is handled
        await asyncio.to_thread(read_topic, broker, changelog, until=lambda m: counted(m) >= READS, timeout_s=60)
        await asyncio.sleep(3)  # a count made twice would show by now
        for tally in (first, second):
            await tally.stop()
        return _tallies(await asyncio.to_thread(read_topic, broker, changelog))

    assert asyncio.run(run()) == Counter({key: READS // len(keys) for key in keys})
