"""Consumers that must not queue behind the per-plate work: hotlist screening and webhooks.

Faust hands each fetched message to every agent in turn and waits while an agent's buffer is
full, so a backlog of journey and charge work would hold up hits as well. Screening and webhook
delivery are cheap and urgent, so each runs its own consumer group inside the worker process,
with a short fetch wait. At-least-once as everywhere: a batch's offsets are committed only after
everything it produced is acknowledged.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from mode import Service

log = logging.getLogger(__name__)
FETCH_MAX_WAIT_MS = 20
REBALANCE_TIMEOUT_MS = 10_000


class BatchConsumer(Service):
    """Consume a topic in a consumer group, handle each batch, then commit it."""

    group_id: str
    topic: str
    max_batch_seconds: float = 10.0  # handling one batch takes at most this long


    def __init__(self, bootstrap_servers: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all", linger_ms=1)
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=1_000,
            # A killed worker must not hold up the others for long: the broker waits this long
            # for members to rejoin a rebalance.
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            max_poll_interval_ms=int(self.max_batch_seconds * 1000),
        )
        await self.producer.start()
        await self.consumer.start()

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None and self.producer is not None
        await self.before_consuming()
        while not self.should_stop:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=500)
            if not batches:
                continue
            await self.handle([record for records in batches.values() for record in records])
            await self.producer.flush()
            await self.consumer.commit()

    async def before_consuming(self) -> None:
        """Wait here for whatever the handler needs first."""

    @abstractmethod
    async def handle(self, records: list[ConsumerRecord]) -> None: ...

    def assigned(self) -> bool:
        return self.consumer is not None and bool(self.consumer.assignment())

    async def on_stop(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                await client.stop()
