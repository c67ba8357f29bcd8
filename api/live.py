"""Hotlist hits as Server-Sent Events, straight from the ``hotlist_hits`` topic.

Each client gets its own consumer with no consumer group, positioned at the end of every partition
when it connects: every client sees every hit from then on, and no client takes hits from
another, as members of one group would. Once positioned, the stream sends ``event: ready``, so a
client (or a test) knows that a hit raised from now on reaches it; then one ``event: hit`` per hit
(``id:`` is the hit id, ``data:`` the hit as the search API shows it to this caller), and a
comment every few seconds so proxies keep the connection open. The consumer stops within half a
second of the client going away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge
from pydantic import BaseModel

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import HotlistHit, decode

log = logging.getLogger(__name__)
POLL_MS = 50
KEEPALIVE_S = 10.0
STREAMS = Gauge("gantry_api_hit_streams", "Clients listening to the live hit stream now")


def sse(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


def wanted(hit: HotlistHit, lists: set[str], max_priority: int | None) -> bool:
    return (not lists or hit.list in lists) and (max_priority is None or hit.priority <= max_priority)


def as_row(hit: HotlistHit) -> dict:
    """A hit from the topic in the shape of a ``hotlist_hits`` row, for the presenter."""
    row = hit.model_dump()
    row["ts_ms"] = int(hit.ts.timestamp() * 1000)
    return row


async def _partitions(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topics.HOTLIST_HITS)
        if found:
            return [TopicPartition(topics.HOTLIST_HITS, p) for p in sorted(found)]
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)
    raise RuntimeError(f"topic {topics.HOTLIST_HITS!r} does not exist; run `gantry up` or create the topics")


async def hit_stream(bootstrap: str, present: Callable[[dict], BaseModel], lists: set[str],
                     max_priority: int | None, gone: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """The stream's bytes; ``gone`` says whether the client has disconnected (the server does not
    always fail a write to a closed connection, so the stream asks twice a second)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=POLL_MS)
    await consumer.start()
    STREAMS.inc()
    try:
        partitions = await _partitions(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolves "end" to an offset now, not at the first fetch
        yield sse("ready", "{}")
        quiet_since = time.monotonic()
        while not await gone():
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                for record in records:
                    try:
                        hit = decode(HotlistHit, record.value)
                    except InvalidEvent as exc:
                        log.warning("skipping bad hit at %s/%s: %s", record.partition, record.offset, exc)
                        continue
                    if wanted(hit, lists, max_priority):
                        yield sse("hit", present(as_row(hit)).model_dump_json(exclude_none=True), hit.hit_id)
                        quiet_since = time.monotonic()
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                yield b": keepalive\n\n"
                quiet_since = time.monotonic()
    finally:
        # Starlette cancels the stream when the client goes; the consumer must still be stopped.
        with anyio.CancelScope(shield=True):
            await consumer.stop()
        STREAMS.dec()
        log.debug("hit stream closed")
