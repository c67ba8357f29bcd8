"""Compacted topics that every worker keeps a whole copy of: the registers (hotlist, vehicle
classes, charge concessions) and the erasure block-list.

None can be split like the reads: a hotlist entry may match a read of a *different* plate, an
erasure must reach whichever partition holds the plate, and the registers are small next to the
reads and wanted by whichever worker holds a plate (re-keying them by plate would buy nothing).
So each worker reads every partition of the topic, without a consumer group, from the
beginning, then tails it. The worker reports
ready only after the first full load, so no read is handled against a half-loaded copy.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from gantry import topics
from gantry.erasures import BlockList
from gantry.errors import InvalidEvent
from gantry.events import Event, decode
from gantry.kafka import key_text
from stream_jobs.registers import PlateIndex
from stream_jobs.runtime.topic_end import read_to_end

log = logging.getLogger(__name__)
POLL_MS = 50  # how soon a change to the topic reaches the jobs
M = TypeVar("M", bound=Event)


class CompactedFeed(Service):
    """Applies every record of :attr:`topic` as it comes, within a poll interval (~50 ms)."""

    topic: str

    def __init__(self, bootstrap_servers: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.loaded = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    @abstractmethod
    def apply(self, record: ConsumerRecord) -> None:
        """Take one record (a tombstone has no value)."""

    async def on_start(self) -> None:
        partitions = await self._partitions()
        # The broker holds a fetch of a quiet topic for the whole wait (500 ms by default): the
        # start-up load and every change after it would wait that long.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=POLL_MS,
        )
        await self._consumer.start()
        self._consumer.assign(partitions)
        async for record in read_to_end(self._consumer, self.bootstrap_servers, partitions):
            self.apply(record)
        log.info("%s loaded", self.topic)
        self.loaded.set()

    async def _partitions(self) -> list[TopicPartition]:
        """The topic's partitions, once it exists (it may be created moments later). Asked of
        the whole cluster's metadata: a request naming the topic could create it, with the
        broker's default partitions."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            for _ in range(100):
                for topic in await admin.describe_topics():
                    if topic["topic"] == self.topic and topic["partitions"]:
                        return sorted(TopicPartition(self.topic, p["partition"]) for p in topic["partitions"])
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        raise RuntimeError(f"topic {self.topic!r} does not exist; run `gantry up` or create the topics")

    @Service.task
    async def _tail(self) -> None:
        await self.loaded.wait()
        assert self._consumer is not None
        while not self.should_stop:
            for records in (await self._consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)).values():
                for record in records:
                    self.apply(record)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class RegisterFeed(CompactedFeed, Generic[M]):
    """Keeps a register's :class:`~stream_jobs.registers.PlateIndex` equal to its topic."""

    def __init__(self, bootstrap_servers: str, topic: str, model: type[M], index: PlateIndex[M], **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.topic = topic
        self.model = model
        self.index = index
        self.on_put: list[Callable[[M], None]] = []  # told of each entry put after the first load

    def apply(self, record: ConsumerRecord) -> None:
        key = key_text(record.key)
        if record.value is None:
            self.index.remove(key)
            return
        try:
            entry = decode(self.model, record.value)
        except InvalidEvent as exc:
            log.warning("ignoring bad %s entry %s at offset %s: %s", self.topic, key, record.offset, exc)
            return
        self.index.put(entry)
        if self.loaded.is_set():
            for told in self.on_put:
                told(entry)


class ErasureFeed(CompactedFeed):
    """The block-list of :mod:`gantry.erasures`; each new erasure is also passed to ``on_erased``
    (the per-plate job forgets what it holds of the plate)."""

    topic = topics.ERASURES

    def __init__(self, bootstrap_servers: str, blocklist: BlockList, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.blocklist = blocklist
        self.on_erased: list[Callable[[str, datetime], None]] = []

    def apply(self, record: ConsumerRecord) -> None:
        pseudonym = self.blocklist.apply(record.key, record.value)
        if pseudonym is not None:
            for forget in self.on_erased:
                forget(pseudonym, self.blocklist.erased[pseudonym])
