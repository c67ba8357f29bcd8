"""Job state that survives a worker: per-partition entries mirrored to a compacted changelog topic.

A batch consumer keeps the state of each partition it owns in memory. After each batch, every
entry the batch changed is written to the same partition of the job's changelog topic, before the
batch's offsets are committed; a worker given a partition rebuilds the partition's state by
reading that changelog partition to its end before it handles the partition's input. This is
what Kafka Streams and Faust tables do, with one write per changed key and batch instead of one
per input message.

At-least-once: a crash after the changelog write but before the commit replays the batch onto a
state that has already seen it; the jobs recognise such replays by their stable ids and send what
they produced again, unchanged.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_jobs.runtime.consumer import BatchConsumer
from stream_jobs.runtime.topic_end import read_to_end

log = logging.getLogger(__name__)
S = TypeVar("S")
RESTORE_FETCH_WAIT_MS = 20


class StatefulBatchConsumer(BatchConsumer, Generic[S]):
    """A batch consumer with a state object per owned partition, kept in ``changelog``."""

    changelog: str  # the compacted topic, partitioned like the input

    def __init__(self, bootstrap_servers: str, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.states: dict[int, S] = {}  # owned partitions only: a rebalance drops the revoked ones

    @abstractmethod
    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> S:
        """The state of a partition from its changelog entries (latest value per key)."""

    @abstractmethod
    def changes(self, state: S) -> Mapping[bytes, bytes | None]:
        """The entries changed since the last call (None deletes), forgetting them."""

    async def state_of(self, partition: int) -> S:
        if partition not in self.states:
            self.states[partition] = self.load(partition, await self._restore(partition))
        return self.states[partition]

    async def save(self) -> None:
        """Write the changed entries of every owned partition; call at the end of ``handle``."""
        assert self.outbox is not None
        for partition, state in self.states.items():
            for key, value in self.changes(state).items():
                await self.outbox.put(self.changelog, key=key, value=value, partition=partition)

    async def _restore(self, partition: int) -> dict[bytes, bytes]:
        tp = TopicPartition(self.changelog, partition)
        entries: dict[bytes, bytes] = {}
        # A short fetch wait: the broker holds a fetch of an empty or finished partition for the
        # whole wait (500 ms by default), and the partition's input waits for its state.
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                  fetch_max_wait_ms=RESTORE_FETCH_WAIT_MS)
        await reader.start()
        try:
            reader.assign([tp])
            async for record in read_to_end(reader, self.bootstrap_servers, [tp]):
                if record.value is None:
                    entries.pop(record.key, None)
                else:
                    entries[record.key] = record.value
        finally:
            await reader.stop()
        log.info("%s: partition %d restored, %d entries", self.changelog, partition, len(entries))
        return entries

    def on_revoked(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.states.pop(tp.partition, None)
