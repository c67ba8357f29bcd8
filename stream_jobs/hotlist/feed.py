"""Every worker's own copy of the whole hotlist, tailed from the compacted ``hotlist`` topic.

Reads are partitioned by plate but a possible match can name a *different* plate, so a worker
cannot make do with a partition of the hotlist: each one reads every partition of the topic,
without a consumer group, from the beginning. The worker reports ready only after the first full
load, so no read is screened against a half-loaded list.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from mode import Service

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry, decode
from stream_jobs.hotlist.rules import HotlistIndex
from stream_jobs.transport import read_to_end

log = logging.getLogger(__name__)
POLL_MS = 50  # how soon a change to the hotlist reaches the screening


class HotlistFeed(Service):
    """Keeps a :class:`HotlistIndex` equal to the topic, within a poll interval (~50 ms)."""

    def __init__(self, bootstrap_servers: str, index: HotlistIndex, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.index = index
        self.loaded = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        # The broker holds a fetch of a quiet topic for the whole wait (500 ms by default): the
        # start-up load and every change after it would wait that long.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=POLL_MS,
        )
        await self._consumer.start()
        partitions = await self._wait_for_partitions()
        self._consumer.assign(partitions)
        async for record in read_to_end(self._consumer, self.bootstrap_servers, partitions):
            self._apply(record)
        log.info("hotlist loaded: %d entries", len(self.index))
        self.loaded.set()

    async def _wait_for_partitions(self) -> list[TopicPartition]:
        assert self._consumer is not None
        for _ in range(100):
            found = self._consumer.partitions_for_topic(topics.HOTLIST)
            if found:
                return [TopicPartition(topics.HOTLIST, p) for p in sorted(found)]
            await self._consumer._client.force_metadata_update()  # topic may be created moments later
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topic {topics.HOTLIST!r} does not exist; run `gantry up` or create the topics")

    @Service.task
    async def _tail(self) -> None:
        await self.loaded.wait()
        assert self._consumer is not None
        while not self.should_stop:
            for records in (await self._consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)).values():
                for record in records:
                    self._apply(record)

    def _apply(self, record: ConsumerRecord) -> None:
        key = record.key.decode() if record.key else ""
        if record.value is None:
            self.index.remove(key)
            return
        try:
            self.index.put(decode(HotlistEntry, record.value))
        except InvalidEvent as exc:
            log.warning("ignoring bad hotlist entry %s at offset %s: %s", key, record.offset, exc)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
