"""Screening: every read is checked against the hotlist as soon as it arrives.

It is stateless, so it runs on whichever worker receives the read, in a consumer group of its
own (see :mod:`stream_jobs.runtime.consumer`); invalid reads are dead-lettered here, once. A read of an
erased plate timed before its erasure (:mod:`gantry.erasures`) is not screened: a subscriber
must not hear of it. A plate listed moments after it passed raises its hit too
(:mod:`stream_jobs.hotlist.recent`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from mode import Service

from gantry import topics
from gantry.config import EventTimeConfig
from gantry.events import DeadLetter, HotlistEntry, HotlistHit, encode
from gantry.observability import ERRORS, MESSAGES_IN, MESSAGES_OUT
from stream_jobs.hotlist.feed import HotlistFeed
from stream_jobs.hotlist.recent import RecentReads
from stream_jobs.hotlist.rules import listing_hits, listing_plates, match
from stream_jobs.intake import STAGE, admit, receipt
from stream_jobs.runtime.compacted import ErasureFeed
from stream_jobs.runtime.consumer import BatchConsumer


class Screener(BatchConsumer):
    group_id = "gantry-jobs-screen"
    sources = (topics.PLATE_READS,)

    def __init__(self, bootstrap_servers: str, feed: HotlistFeed, erasures: ErasureFeed,
                 known_cameras: Collection[str], window: EventTimeConfig, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.feed = feed
        self.erasures = erasures
        self.blocklist = erasures.blocklist
        self.hotlist = feed.index
        self.known_cameras = known_cameras
        self.window = window
        self.received = MESSAGES_IN.labels(STAGE, topics.PLATE_READS)
        self.sent = MESSAGES_OUT.labels(STAGE, topics.HOTLIST_HITS)
        self.recent = RecentReads()
        self.listed: asyncio.Queue[HotlistEntry] = asyncio.Queue()
        feed.on_put.append(self.listed.put_nowait)

    async def before_consuming(self) -> None:
        await self.feed.loaded.wait()  # no read is screened against a half-loaded hotlist
        await self.erasures.loaded.wait()

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        self.received.inc(len(records))  # every read counts here once (the per-plate job sees them too)
        now = datetime.now(UTC)
        for record in records:
            read = admit(record.value, self.known_cameras, self.window, receipt(record.timestamp, now, self.window),
                         partition=record.partition, offset=record.offset)
            if isinstance(read, DeadLetter):
                ERRORS.labels(STAGE, "invalid_read").inc()
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(read))
                continue
            if self.blocklist.erased_at(read.plate, read.ts) is not None:
                continue
            self.recent.add(read, time.monotonic())
            await self.put_hits(match(read, self.hotlist))

    async def put_hits(self, hits: list[HotlistHit]) -> None:
        assert self.outbox is not None
        for hit in hits:
            await self.outbox.put(topics.HOTLIST_HITS, key=hit.plate.encode(), value=encode(hit))
            self.sent.inc()

    @Service.task
    async def _screen_the_newly_listed(self) -> None:
        """Screen the recent reads of each plate listed after start-up once more."""
        while not self.should_stop:
            entry = await self.listed.get()
            reads = [r for r in self.recent.of_plates(listing_plates(entry), time.monotonic())
                     if self.blocklist.erased_at(r.plate, r.ts) is None]
            hits = listing_hits(entry, reads, self.hotlist)
            if not hits or self.outbox is None:
                continue
            async with self.handling:
                await self.put_hits(hits)
                acknowledged = self.outbox.send()
            await acknowledged
