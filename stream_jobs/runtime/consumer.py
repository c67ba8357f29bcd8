"""The stream jobs' one engine: consumer groups that take their topic by the batch.

Every job (screening, the per-plate job, statistics, day closing, webhooks, parking) is a
:class:`BatchConsumer`: a plain aiokafka consumer group inside the worker process, taking whole
fetched batches, with a short fetch wait. A framework that hands each message to a handler one
event at a time (Faust, which ran these jobs before) costs more per read than the rules
themselves, and a backlog of journey and charge work would hold up hits as well. What a batch
produces goes out through an :class:`Outbox`, as whole record batches. At-least-once as
everywhere: a batch's offsets are committed only after everything it produced is acknowledged.

Each batch sets ``gantry_consumer_lag`` (per group, topic and partition) and observes
``gantry_latency_seconds`` (per group: from the batch being fetched to its outputs acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from gantry.observability import LAG, LATENCY
from stream_jobs.runtime.outbox import RECORD_BATCH_BYTES, Outbox

log = logging.getLogger(__name__)
SLICE = 100  # records handled between turns of the event loop
REBALANCE_TIMEOUT_MS = 10_000


class BatchConsumer(Service):
    """Consume a topic in a consumer group, handle each batch, and commit it once its outputs are
    acknowledged (at most every ``commit_every_s``)."""

    group_id: str
    sources: tuple[str, ...]  # the topics consumed
    max_records = 500  # per batch
    # How long the broker may hold a fetch while a partition is quiet: short for alerts, longer
    # where a quarter second does not matter, since every empty fetch costs both sides CPU.
    fetch_max_wait_ms = 20
    max_batch_seconds: float = 10.0  # handling one batch takes at most this long
    batch_every_s: float = 0.0  # at most one batch this often: for jobs whose cost is mostly per batch
    # Offsets are committed at most this often: a commit is two or more durable writes on the
    # embedded broker, and the next batch waits for the last one's commit; a crash only reads
    # again what the outputs' stable ids make harmless.
    commit_every_s: float = 0.5

    def __init__(self, bootstrap_servers: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outbox: Outbox | None = None
        self.settling: asyncio.Future | None = None  # the last batch, until its outputs are acknowledged
        self.revoked: set[TopicPartition] = set()  # given up since the last batch was fetched
        self.uncommitted: dict[TopicPartition, int] = {}  # handled and acknowledged, not yet committed
        self.committed_at = 0.0
        # Held while a batch is handled and its outputs sent: other outputs of the job (not caused
        # by a batch) go out between batches, so no send() splits a batch the commit waits for,
        # and a rebalance moves partitions between batches only.
        self.handling = asyncio.Lock()

    async def on_start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all", linger_ms=1,
                                         max_batch_size=RECORD_BATCH_BYTES)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=1_000,
            # A killed worker must not hold up the others for long: the broker waits this long
            # for members to rejoin a rebalance.
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            max_poll_interval_ms=int(self.max_batch_seconds * 1000),
            # Range assignment gives each member the same partition numbers of every topic it
            # reads (topics of equal partition counts), which keeps a plate's reads together.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await self.producer.start()
        self.outbox = Outbox(self.producer)
        await self.consumer.start()
        self.consumer.subscribe(self.sources, listener=_Revocations(self))

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None and self.outbox is not None
        await self.before_consuming()
        while not self.should_stop:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=self.max_records)
            polled = time.monotonic()
            self.revoked.clear()
            async with self.handling:
                # A rebalance came in while this waited for the lock: the revoked partitions'
                # records are the next owner's to read (from the commit), even where that owner is
                # this member again.
                batches = {tp: records for tp, records in batches.items() if tp not in self.revoked}
                previous = self.settling
                if batches:
                    await self.handle([record for records in batches.values() for record in records])
                    self.settling = asyncio.ensure_future(self._settle(previous, self.outbox.send(), batches, polled))
            if not batches:
                await self.settled()
                await self.commit(due_only=True)
                continue
            if previous is not None:
                await previous  # the broker acknowledges one batch while the next is handled, not more
            await asyncio.sleep(max(0.0, polled + self.batch_every_s - time.monotonic()))
        await self.settled()
        await self.commit()

    async def settled(self) -> None:
        """Wait for the batches handled so far to be acknowledged (their offsets are then due to commit)."""
        settling = self.settling
        if settling is not None:
            await settling
            if self.settling is settling:
                self.settling = None

    async def _settle(self, previous: asyncio.Future | None, acknowledged: Awaitable[None],
                      batches: dict[TopicPartition, list[ConsumerRecord]], polled: float) -> None:
        """Once a batch's outputs are acknowledged, its offsets are due to commit (and committed if
        ``commit_every_s`` is up); the next batch is handled meanwhile, so the broker's round trips
        do not leave the worker idle. Commits stay in order: the previous batch's first."""
        assert self.consumer is not None
        if previous is not None:
            await previous
        await acknowledged
        LATENCY.labels(self.group_id).observe(time.monotonic() - polled)
        for tp, records in batches.items():
            self.uncommitted[tp] = records[-1].offset + 1
            end = self.consumer.highwater(tp)
            if end is not None:
                LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(0, end - records[-1].offset - 1))
        await self.commit(due_only=True)

    async def commit(self, due_only: bool = False) -> None:
        """Commit the acknowledged batches' offsets (``due_only``: if ``commit_every_s`` is up)."""
        assert self.consumer is not None
        if not self.uncommitted or due_only and time.monotonic() - self.committed_at < self.commit_every_s:
            return
        owned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in self.uncommitted.items() if tp in owned}
        self.uncommitted.clear()
        self.committed_at = time.monotonic()
        try:
            if offsets:
                await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while the batch was handled: the partitions' new owners
            # read the batch again, and the outputs' stable ids make the repeat harmless.
            log.warning("%s: batch not committed (%s); its new owner will handle it again", self.group_id, exc)

    async def before_consuming(self) -> None:
        """Wait here for whatever the handler needs first."""

    def on_revoked(self, partitions: set[TopicPartition]) -> None:
        """Forget what was kept for partitions that another member may own now."""

    @abstractmethod
    async def handle(self, records: list[ConsumerRecord]) -> None: ...

    def assigned(self) -> bool:
        return self.consumer is not None and bool(self.consumer.assignment())

    async def on_stop(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                await client.stop()


async def paced(records: list[ConsumerRecord]) -> AsyncIterator[ConsumerRecord]:
    """The records, giving the event loop a turn every ``SLICE`` of them.

    Every consumer of a worker shares one event loop, and handling a big batch never waits on
    anything, so without these turns the per-plate job would hold up screening (and so alerts)
    for the whole batch.
    """
    for n, record in enumerate(records):
        if n and not n % SLICE:
            await asyncio.sleep(0)
        yield record


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """The batch being handled is finished, acknowledged and committed before the partitions
        move. Handed over half-way, its first records' state changes would be in no changelog,
        while its offsets were committed (by this member, if given the partitions back)."""
        async with self.owner.handling:
            await self.owner.settled()
            await self.owner.commit()
            self.owner.revoked |= set(revoked)
            self.owner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: a partition's state is loaded when its first record comes."""
