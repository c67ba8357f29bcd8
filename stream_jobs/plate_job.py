"""The per-plate job as a consumer group: reads in, journeys, charges and late reads out.

It runs the rules of :mod:`stream_jobs.tracking` over whole fetched batches of ``plate_reads``
(see :mod:`stream_jobs.runtime.consumer` for why by the batch). A plate's state lives in its
read's partition and is kept in a changelog (:mod:`stream_jobs.runtime.state`): one entry per plate,
written once per batch, plus the partition's watermark and its charges per zone-day
(:mod:`stream_jobs.charges.days`).

Reads normally arrive keyed by plate, so a plate's reads share a partition. A read keyed otherwise
is re-keyed onto an internal topic with the same partition count, and the group reads both
topics with range assignment, which gives a member the same partition numbers of both: the
re-keyed read lands in its plate's partition and state.

Erasures (:mod:`gantry.erasures`): a read of an erased plate timed before its erasure is dropped
here, whichever topic brings it; when an erasure arrives, each owned partition forgets what it
holds of the plate from before it (:func:`stream_jobs.tracking.forget`), and so does a
partition's state rebuilt from a changelog that still held it. ``gantry privacy erase``
tombstones the plate's changelog key for the partitions no worker holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import orjson
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic
from prometheus_client import Counter as Metric

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, PlateRead, encode
from gantry.kafka import new_topic
from gantry.observability import MESSAGES_OUT
from stream_jobs.charges.days import DayLedger
from stream_jobs.charges.registers import ChargeRegisters
from stream_jobs.intake import STAGE, admit, receipt
from stream_jobs.runtime.compacted import CompactedFeed, ErasureFeed
from stream_jobs.runtime.consumer import paced
from stream_jobs.runtime.state import StatefulBatchConsumer
from stream_jobs.tracking import PartitionState, PlateHistory, Tracker, forget

WATERMARK_KEY = b"#watermark"  # cannot be a plate: plates are letters and digits
DAYS_KEY = b"#days"
OFFSETS_KEY = b"#offsets"
ERASED_READS = Metric("gantry_erased_reads", "Reads of an erased plate from before its erasure, dropped")


def internal_topics(config: GantryConfig) -> list[NewTopic]:
    """The job's own topics, partitioned exactly like ``plate_reads``."""
    partitions = config.broker.partitions_for(topics.PLATE_READS)
    return [new_topic(config, topics.READS_BY_PLATE, partitions),
            new_topic(config, topics.PLATE_HISTORIES, partitions, compacted=True)]


class PlateJob(StatefulBatchConsumer[PartitionState]):
    group_id = "gantry-jobs-track"
    sources = (topics.PLATE_READS, topics.READS_BY_PLATE)
    changelog = topics.PLATE_HISTORIES
    fetch_max_wait_ms = 250  # journeys, charges and statistics may wait a quarter second
    max_records = 20_000  # large batches: each plate's state is saved once per batch
    # At most four batches a second: a read stream that trickles in would otherwise make a
    # batch of a few reads per fetch, each flushing its journeys, charges and changelog to every
    # partition it touched, and on the embedded broker every flush is an object written per
    # partition. Hotlist hits do not wait for it: they are the screener's, a group of its own.
    batch_every_s = 0.25

    def __init__(self, bootstrap_servers: str, config: GantryConfig, known_cameras: Collection[str],
                 erasures: ErasureFeed, registers: ChargeRegisters, register_feeds: Sequence[CompactedFeed] = (),
                 **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.erasures = erasures
        self.blocklist = erasures.blocklist
        erasures.on_erased.append(self.forget_erased)
        self.register_feeds = register_feeds  # the feeds that keep ``registers`` current
        self.tracker = Tracker(config, registers)
        self.known_cameras = known_cameras
        self.window = config.event_time
        self.sent = {topic: MESSAGES_OUT.labels(STAGE, topic)
                     for topic in (topics.JOURNEYS, topics.ZONE_CHARGES, topics.LATE_READS, topics.ZONE_DAY_PARTS)}

    async def before_consuming(self) -> None:
        await self.erasures.loaded.wait()  # no erased read is tracked for want of the block-list
        for feed in self.register_feeds:
            await feed.loaded.wait()  # no charge is priced against a half-loaded register

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        sent: Counter[str] = Counter()
        now = datetime.now(UTC)
        async for record in paced(records):
            read = await self._read_of(record, now)
            if read is None:
                continue
            if self.blocklist.erased_at(read.plate, read.ts) is not None:
                ERASED_READS.inc()
                continue
            state = await self.state_of(record.partition)
            seen = record.offset < state.offsets.get(record.topic, 0)
            state.offsets[record.topic] = max(state.offsets.get(record.topic, 0), record.offset + 1)
            for output in self.tracker.track(read, record.value, state, seen=seen):
                await self.outbox.put(output.topic, key=output.key, value=output.value)
                sent[output.topic] += 1
        for topic, count in sent.items():
            self.sent[topic].inc(count)
        await self.save()

    async def _read_of(self, record: ConsumerRecord, now: datetime) -> PlateRead | None:
        """The read to track now, or None: refused or re-keyed. The screener dead-letters the
        refused reads of ``plate_reads``; this job those of its own re-keyed topic, which any
        producer can reach too."""
        assert self.outbox is not None
        received_at = receipt(record.timestamp, now, self.window)
        read = admit(record.value, self.known_cameras, self.window, received_at,
                     source_topic=record.topic, partition=record.partition, offset=record.offset)
        if isinstance(read, DeadLetter):
            if record.topic == topics.READS_BY_PLATE:
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(read))
            return None
        if record.topic == topics.READS_BY_PLATE:
            return read
        if record.key != read.plate.encode():
            # Stamped with its receipt, so that the re-keyed read is judged against the same window.
            await self.outbox.put(topics.READS_BY_PLATE, key=read.plate.encode(), value=record.value,
                                  timestamp_ms=int(received_at.timestamp() * 1000))
            return None
        return read

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> PartitionState:
        state = PartitionState(partition, watermark=int(entries.get(WATERMARK_KEY, 0)))
        if DAYS_KEY in entries:
            state.days = DayLedger.from_json(orjson.loads(entries[DAYS_KEY]))
        if OFFSETS_KEY in entries:
            state.offsets = orjson.loads(entries[OFFSETS_KEY])
        for key, value in entries.items():
            if key not in (WATERMARK_KEY, DAYS_KEY, OFFSETS_KEY):
                state.plates[key.decode()] = PlateHistory.from_json(orjson.loads(value))
        if self.blocklist.newest is not None:
            newest_ms = int(self.blocklist.newest.timestamp() * 1000)
            for plate in [p for p, h in state.plates.items() if min(s.ts_ms for s in h.sightings) < newest_ms]:
                erased_at = self.blocklist.erased.get(self.blocklist.pseudonym(plate))
                if erased_at is not None:
                    forget(state, plate, int(erased_at.timestamp() * 1000))
        return state

    def forget_erased(self, pseudonym: str, erased_at: datetime) -> None:
        """An erasure has come: each owned partition forgets the plate's past (saved with the next batch)."""
        erased_at_ms = int(erased_at.timestamp() * 1000)
        for state in self.states.values():
            for plate in [p for p in state.plates if self.blocklist.pseudonym(p) == pseudonym]:
                forget(state, plate, erased_at_ms)

    def changes(self, state: PartitionState) -> dict[bytes, bytes | None]:
        if not state.changed and not state.dropped:
            return {}
        # The offsets first: a state saved in part must not pass its reads for new ones.
        entries: dict[bytes, bytes | None] = {OFFSETS_KEY: orjson.dumps(state.offsets)}
        entries.update({plate.encode(): orjson.dumps(state.plates[plate].to_json()) for plate in state.changed})
        entries.update({plate.encode(): None for plate in state.dropped})
        entries[WATERMARK_KEY] = str(state.watermark).encode()
        if state.days.changed:
            entries[DAYS_KEY] = orjson.dumps(state.days.to_json())
            state.days.changed = False
        state.changed.clear()
        state.dropped.clear()
        return entries
