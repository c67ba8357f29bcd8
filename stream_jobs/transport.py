"""Faust's Kafka transport, adjusted for the embedded broker (Tansu).

Two changes, both in the consumer:

- faust-streaming builds its consumer with ``fetch_max_wait_ms=1500`` and offers no setting for
  it; Tansu waits the full time when a partition is quiet, adding up to 1.5 s to every output
  (a quarter second is plenty for closing charging days, Faust's only work here).
- Tansu reports a partition's end offset as one past the *first* record of its last batch, not
  past its last record. Faust rebuilds a table from its changelog only up to that offset, so it
  would forget the tail of the last batch after a rebalance. The true end is found by reading
  that last batch.

Select it with the ``gantry-kafka://`` broker scheme.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

FETCH_MAX_WAIT_MS = 250  # only day closing runs on Faust's consumer: it can wait
SCHEME = "gantry-kafka"


async def true_end_offsets(bootstrap_servers: list[str] | str, reported: Mapping[TP, int]) -> dict[TP, int]:
    """One past the last record of each partition, given the end offsets the broker reported."""
    ends = dict(reported)
    behind = [tp for tp, end in ends.items() if end]
    if not behind:
        return ends
    kafka_tps = {tp: TopicPartition(tp.topic, tp.partition) for tp in behind}
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign(list(kafka_tps.values()))
        for tp, ktp in kafka_tps.items():
            reader.seek(ktp, ends[tp] - 1)
        for tp, ktp in kafka_tps.items():
            records = (await reader.getmany(ktp, timeout_ms=2000)).get(ktp, [])
            ends[tp] = max([ends[tp], *(r.offset + 1 for r in records)])
    finally:
        await reader.stop()
    return ends


async def read_to_end(consumer: AIOKafkaConsumer, bootstrap_servers: str,
                      partitions: list[TopicPartition]) -> AsyncIterator[ConsumerRecord]:
    """Every record of the assigned ``partitions``, from the beginning to their true end: how a
    worker loads a compacted topic (the hotlist, a job's changelog) before it may use it."""
    await consumer.seek_to_beginning(*partitions)
    ends = await true_end_offsets(bootstrap_servers, await consumer.end_offsets(partitions))
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for records in (await consumer.getmany(*partitions, timeout_ms=200, max_records=10_000)).values():
            for record in records:
                yield record


class GantryConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start() for its fetcher
        self._bootstrap_servers = consumer._client._bootstrap_servers
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        return await true_end_offsets(self._bootstrap_servers, reported)


class GantryConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> GantryConsumerThread:
        return GantryConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = GantryConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
