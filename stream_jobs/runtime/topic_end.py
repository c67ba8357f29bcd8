"""Reading a topic to its end on the embedded broker (Tansu), with aiokafka's public API.

Tansu reports a partition's end offset as one past the *first* record of its last batch, not
past its last record. A worker that loads a compacted topic (a register, a job's changelog) up
to the reported end would forget the tail of the last batch; the true end is found by reading
that last batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def true_end_offsets(bootstrap_servers: list[str] | str,
                           reported: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """One past the last record of each partition, given the end offsets the broker reported."""
    ends = dict(reported)
    behind = [tp for tp, end in ends.items() if end]
    if not behind:
        return ends
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign(behind)
        for tp in behind:
            reader.seek(tp, ends[tp] - 1)
        for tp in behind:
            records = (await reader.getmany(tp, timeout_ms=2000)).get(tp, [])
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
