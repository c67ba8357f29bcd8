"""The edge's local copy of the lists and the stays, from their compacted topics, kept on disk too.

``gantry ingest serve`` reads the ``hotlist`` and ``parking_sessions`` topics from the start,
without a consumer group, and then tails them, so a change reaches the barriers within a poll.
The copy is written to ``<data_dir>/ingest-sites.json`` (at most once a second, and on
shutdown): an endpoint restarted while the broker is down decides from the copy it had, rather
than from no lists at all. Without a copy, start-up waits up to ``wait_s`` for the first load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry, decode
from gantry.site_events import ParkingSession
from sites.gatekeeper import Gatekeeper
from sites.lists import ListBook
from sites.presence import Presence

log = logging.getLogger(__name__)
POLL_MS = 50
SAVE_EVERY_S = 1.0
TOPICS = (topics.HOTLIST, topics.PARKING_SESSIONS)


class SiteFeed:
    def __init__(self, bootstrap_servers: str, gatekeeper: Gatekeeper, snapshot: Path) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.gatekeeper = gatekeeper
        self.snapshot = snapshot
        self.loaded = asyncio.Event()
        self._dirty = False
        self._saved_at = 0
        self._tasks: list[asyncio.Task] = []

    async def start(self, wait_s: float) -> None:
        restored = self._restore()
        self._tasks = [asyncio.create_task(self._follow(), name="site-feed"),
                       asyncio.create_task(self._save_now_and_then(), name="site-snapshot")]
        if not restored:
            try:
                await asyncio.wait_for(self.loaded.wait(), wait_s)
            except TimeoutError:
                log.warning("no copy of the lists yet and the broker did not answer within %.0f s: "
                            "every plate is unknown until it does", wait_s)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._dirty or self.gatekeeper.decided != self._saved_at:
            self._save()

    def apply(self, record: ConsumerRecord, book: ListBook) -> None:
        self._dirty = True
        if record.topic == topics.HOTLIST:
            if record.value is None:
                book.remove(record.key.decode() if record.key else "")
                return
            try:
                book.put(decode(HotlistEntry, record.value))
            except InvalidEvent as exc:
                log.warning("ignoring bad hotlist entry at offset %s: %s", record.offset, exc)
        elif record.value is not None:
            try:
                self.gatekeeper.presence.apply(decode(ParkingSession, record.value))
            except InvalidEvent as exc:
                log.warning("ignoring bad parking session at offset %s: %s", record.offset, exc)

    async def _follow(self) -> None:
        """Load both topics to their end, then tail them; through a broker outage, start again."""
        backoff = 0.2
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, group_id=None,
                                        enable_auto_commit=False, fetch_max_wait_ms=POLL_MS)
            try:
                await consumer.start()
                partitions = [TopicPartition(t, p) for t in TOPICS for p in sorted(consumer.partitions_for_topic(t) or ())]
                if {tp.topic for tp in partitions} != set(TOPICS):
                    raise KafkaError(f"topics {', '.join(TOPICS)} not all there yet")
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await consumer.end_offsets(partitions)
                # The first load fills a book of its own: a restored copy may hold entries whose
                # removal the topic no longer shows once compacted.
                book = self.gatekeeper.book if self.loaded.is_set() else ListBook()
                while True:
                    for records in (await consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)).values():
                        for record in records:
                            self.apply(record, book)
                    if not self.loaded.is_set() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                        self.gatekeeper.book = book
                        log.info("lists and stays loaded: %d list entries", len(book))
                        self.loaded.set()
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a supervisor loop: the feed must outlive any broker trouble
                log.info("site feed paused (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                await consumer.stop()

    async def _save_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            if self._dirty or self.gatekeeper.decided != self._saved_at:
                self._dirty, self._saved_at = False, self.gatekeeper.decided
                await asyncio.to_thread(self._save)

    def _save(self) -> None:
        data = {"hotlist": [e.model_dump(mode="json", exclude_none=True) for e in self.gatekeeper.book.entries()],
                "presence": self.gatekeeper.presence.to_json()}
        temporary = self.snapshot.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, self.snapshot)

    def _restore(self) -> bool:
        if not self.snapshot.exists():
            return False
        try:
            data = json.loads(self.snapshot.read_text())
            entries = [HotlistEntry.model_validate(e) for e in data["hotlist"]]
            presence = Presence.from_json(data["presence"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: not a usable copy of the lists (%s); waiting for the broker's", self.snapshot, exc)
            return False
        for entry in entries:
            self.gatekeeper.book.put(entry)
        self.gatekeeper.presence = presence
        log.info("%s: %d list entries restored", self.snapshot, len(entries))
        return True
