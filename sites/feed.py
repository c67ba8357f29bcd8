"""The edge's local copy of the lists and the stays, from their compacted topics, kept on disk too.

``gantry ingest serve`` reads the ``hotlist``, ``parking_sessions`` and ``parking_payments``
topics from the start,
without a consumer group, and then tails them, so a change reaches the barriers within a poll.
The copy is written to ``<data_dir>/ingest-sites/`` (the lists as the topic's own records, one a
line, when they change; who is inside every ``SAVE_EVERY_S``; and both on shutdown): an endpoint
restarted while the broker is down decides from the copy it had, rather than from no lists at
all. Without a copy, start-up waits up to ``wait_s`` for the first load.

Writing the copy must not hold up the answers: the lists are kept as the bytes the topic gave
(no serialising of a hundred thousand entries on the event loop's interpreter lock), and the
files are written from a thread.

The stream job that decides gate reads recognised from video (:mod:`stream_jobs.video_gates`)
keeps the same copy with no folder: it reads ``plate_reads`` from the broker anyway, so a copy
on disk would decide nothing more while the broker is down.
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
from gantry.kafka import key_text
from gantry.site_events import ParkingPayment, ParkingSession
from sites.gatekeeper import Gatekeeper
from sites.lists import ListBook
from sites.presence import Presence

log = logging.getLogger(__name__)
POLL_MS = 50
SAVE_EVERY_S = 2.0
TOPICS = (topics.HOTLIST, topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS)


class SiteFeed:
    def __init__(self, bootstrap_servers: str, gatekeeper: Gatekeeper, folder: Path | None) -> None:
        """``folder`` None: no copy on disk, the lists and stays are the broker's alone."""
        self.bootstrap_servers = bootstrap_servers
        self.gatekeeper = gatekeeper
        self.folder = folder
        if folder is not None:
            self.lists_file = folder / "lists.jsonl"
            self.presence_file = folder / "presence.json"
            folder.mkdir(parents=True, exist_ok=True)
        self.loaded = asyncio.Event()
        self._raw: dict[str, bytes] = {}  # the lists as the topic's records, by key
        self._lists_changed = self._presence_changed = False
        self._saved_at = 0  # the gatekeeper's decision count at the last save
        self._tasks: list[asyncio.Task] = []

    async def start(self, wait_s: float | None) -> None:
        """Start following the topics; without a copy restored, wait up to ``wait_s`` (None: for
        as long as it takes) for the first load."""
        restored = self.folder is not None and self._restore()
        self._tasks = [asyncio.create_task(self._follow(), name="site-feed")]
        if self.folder is not None:
            self._tasks.append(asyncio.create_task(self._save_now_and_then(), name="site-snapshot"))
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
        if self.folder is not None:
            self._save(*self._due())

    def apply(self, record: ConsumerRecord, book: ListBook, raw: dict[str, bytes]) -> None:
        key = key_text(record.key)
        if record.topic == topics.HOTLIST:
            self._lists_changed = True
            if record.value is None:
                book.remove(key)
                raw.pop(key, None)
                return
            try:
                book.put(decode(HotlistEntry, record.value))
            except InvalidEvent as exc:
                log.warning("ignoring bad hotlist entry at offset %s: %s", record.offset, exc)
                return
            raw[key] = record.value
        elif record.value is None:  # a plate's key tombstoned by an erasure (``car_park:plate``)
            park, _, plate = key.partition(":")
            self.gatekeeper.presence.forget(park, plate)
            self._presence_changed = True
        else:
            try:
                if record.topic == topics.PARKING_PAYMENTS:
                    self.gatekeeper.presence.pay(decode(ParkingPayment, record.value))
                else:
                    self.gatekeeper.presence.apply(decode(ParkingSession, record.value))
            except InvalidEvent as exc:
                log.warning("ignoring bad %s record at offset %s: %s", record.topic, record.offset, exc)
                return
            self._presence_changed = True

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
                first = not self.loaded.is_set()
                book, raw = (ListBook(), {}) if first else (self.gatekeeper.book, self._raw)
                while True:
                    for records in (await consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)).values():
                        for record in records:
                            self.apply(record, book, raw)
                    if not self.loaded.is_set() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                        self.gatekeeper.book, self._raw = book, raw
                        self._lists_changed = True
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

    def _due(self) -> tuple[list[bytes] | None, dict | None]:
        """What to write now (None: unchanged), taken on the event loop so it is consistent."""
        lists = list(self._raw.values()) if self._lists_changed and self.loaded.is_set() else None
        moved = self._presence_changed or self.gatekeeper.decided != self._saved_at
        presence = self.gatekeeper.presence.to_json() if moved else None
        self._lists_changed = self._presence_changed = False
        self._saved_at = self.gatekeeper.decided
        return lists, presence

    async def _save_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            lists, presence = self._due()
            if lists is not None or presence is not None:
                await asyncio.to_thread(self._save, lists, presence)

    def _save(self, lists: list[bytes] | None, presence: dict | None) -> None:
        if lists is not None:
            _replace(self.lists_file, b"\n".join(lists))
        if presence is not None:
            _replace(self.presence_file, json.dumps(presence).encode())

    def _restore(self) -> bool:
        if not self.lists_file.exists():
            return False
        try:
            lines = [line for line in self.lists_file.read_bytes().split(b"\n") if line]
            entries = [HotlistEntry.model_validate_json(line) for line in lines]
            presence = (Presence.from_json(json.loads(self.presence_file.read_text()))
                        if self.presence_file.exists() else Presence())
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: not a usable copy of the lists (%s); waiting for the broker's", self.lists_file, exc)
            return False
        for entry, line in zip(entries, lines, strict=True):
            self.gatekeeper.book.put(entry)
            self._raw[entry.key] = line
        self.gatekeeper.presence = presence
        log.info("%s: %d list entries restored", self.lists_file, len(entries))
        return True


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
