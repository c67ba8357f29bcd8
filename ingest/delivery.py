"""Getting accepted events to the broker, through outages, in order, without losing one.

An HTTP request is answered 2xx only once its event is safe: acknowledged by the broker, or, when
the broker does not answer within ``ack_timeout_s``, written to the on-disk :class:`Spool`. From
the first failure on, every new event goes to the spool behind the ones already there, and one
replay task sends the spool to the broker oldest first; only when it is empty do events go
straight to the broker again. That keeps a camera's events in the order they were accepted.

When the broker stops acknowledging, the producers (:mod:`ingest.lanes`) are abandoned together
with the batches they had not sent yet, and the replay starts fresh ones: otherwise those
batches would reach the broker when it returns, after (and in addition to) their spooled copies.
Only a request already on the wire when the broker died can arrive twice; the read_id makes that
repeat harmless downstream.

An error that is about the event itself, not the broker's state (see :data:`REFUSALS`), is no
outage: the event goes to the spool's quarantine with the broker's reason, answered
"quarantined", and the events behind it carry on. Replayed again it would be refused again, and
every later event would wait behind it for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from prometheus_client import Counter, Gauge

from ingest.lanes import Lanes
from ingest.spool import Spool, SpooledEvent

log = logging.getLogger(__name__)

Outcome = Literal["acked", "spooled", "quarantined"]
# The errors that say the broker will never store this record, whatever its state. aiokafka's
# ``retriable`` flag cannot tell them apart: it is False for a timeout, an unavailable broker and
# a closed producer too, which are outages. Batches hold at most 16 KiB (aiokafka's default), so
# a batch refused as too large holds one record: the one at fault.
REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)
SPOOLED = Counter("gantry_ingest_spooled", "Events written to the spool while the broker was unreachable")
REPLAYED = Counter("gantry_ingest_replayed", "Spooled events delivered to the broker")
SPOOL_DEPTH = Gauge("gantry_ingest_spool_events", "Events waiting in the spool")
BROKER_OUTAGES = Counter("gantry_ingest_broker_outages", "Times the broker stopped acknowledging events")
_REPLAY_BATCH = 200


class Delivery:
    def __init__(
        self, bootstrap_servers: str, spool: Spool, ack_timeout_s: float, retry_max_s: float = 5.0,
        producers: int = 1,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.producers = producers
        self.spool = spool
        self.ack_timeout_s = ack_timeout_s
        self.retry_max_s = retry_max_s
        self._lanes: Lanes | None = None
        self._spooling = len(spool) > 0  # events left from a previous run go first
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task | None = None
        SPOOL_DEPTH.set(len(spool))

    @property
    def healthy(self) -> bool:
        return self._lanes is not None and not self._spooling

    async def start(self) -> None:
        """Start the replay task; the producers connect then or, if the broker is down, later."""
        self._replayer = asyncio.create_task(self._replay(), name="spool-replay")
        if self._spooling:
            self._wake.set()
        elif not await self._connect():
            await self._enter_outage("the broker is unreachable at start-up")

    async def stop(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            await asyncio.gather(self._replayer, return_exceptions=True)
        if self._lanes is not None:
            await self._lanes.stop()

    async def deliver(self, topic: str, key: bytes, value: bytes) -> Outcome:
        """Return once the event is safe; raise :class:`SpoolFull` when it cannot be made safe."""
        if not self._spooling and self._lanes is not None:
            try:
                await asyncio.wait_for(self._lanes.send_and_wait(topic, value, key), timeout=self.ack_timeout_s + 1)
                return "acked"
            except REFUSALS as exc:
                self.spool.set_aside(self.spool.append(topic, key, value), "refused", _refusal(exc))
                return "quarantined"
            except (KafkaError, TimeoutError) as exc:
                await self._enter_outage(f"{type(exc).__name__}: {exc}")
        self.spool.append(topic, key, value)
        SPOOLED.inc()
        SPOOL_DEPTH.set(len(self.spool))
        self._wake.set()
        return "spooled"

    async def _enter_outage(self, reason: str) -> None:
        if not self._spooling:
            BROKER_OUTAGES.inc()
            log.warning("broker %s not acknowledging (%s): spooling events", self.bootstrap_servers, reason)
        self._spooling = True
        self._wake.set()
        await self._abandon_lanes(reason)

    async def _abandon_lanes(self, reason: str) -> None:
        lanes, self._lanes = self._lanes, None
        if lanes is None:
            return
        lanes.fail_unsent(KafkaTimeoutError(f"abandoned: {reason}"))
        try:
            await asyncio.wait_for(lanes.stop(), timeout=self.ack_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            log.info("abandoned producers did not stop cleanly: %s", exc)

    async def _connect(self) -> bool:
        try:
            self._lanes = await Lanes.start(
                self.bootstrap_servers,
                self.producers,
                acks="all",
                linger_ms=2,
                request_timeout_ms=int(self.ack_timeout_s * 1000),
                max_request_size=8 * 1024 * 1024,
            )
        except KafkaError as exc:
            log.info("broker %s unreachable: %s", self.bootstrap_servers, exc)
            return False
        return True

    async def _replay(self) -> None:
        backoff = 0.2
        while True:
            await self._wake.wait()
            try:
                replayed = await self._replay_some()
            except Exception:  # a supervisor loop: an unexpected error must not end the replay for good
                log.exception("spool replay failed; retrying")
                replayed = False
            if replayed:
                backoff = 0.2
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
            if len(self.spool) == 0 and self._lanes is not None:
                # No await between the check and the switch: no event can slip in between.
                if self._spooling:
                    log.info("broker %s acknowledging again: spool drained", self.bootstrap_servers)
                self._spooling = False
                self._wake.clear()

    async def _replay_some(self) -> bool:
        """Send the oldest spooled events; True when each was acknowledged or set aside."""
        if self._lanes is None and not await self._connect():
            return False
        assert self._lanes is not None
        events = self.spool.head(_REPLAY_BATCH)
        try:
            answers = [await self._send(e) for e in events]
            for event, answer in zip(events, answers, strict=True):
                try:
                    await asyncio.wait_for(answer, timeout=self.ack_timeout_s + 1)
                except REFUSALS as exc:
                    self.spool.set_aside(event.seq, "refused", _refusal(exc))
                else:
                    self.spool.remove(event.seq)
                    REPLAYED.inc()
                SPOOL_DEPTH.set(len(self.spool))
        except (KafkaError, TimeoutError) as exc:
            log.info("replay paused, %d events spooled: %s", len(self.spool), exc)
            await self._abandon_lanes(str(exc))
            return False
        return True

    async def _send(self, event: SpooledEvent) -> asyncio.Future:
        """The broker's answer to come. A record over ``max_request_size`` is refused by aiokafka
        before it is sent; that refusal becomes an answer like the broker's own, in its place."""
        assert self._lanes is not None
        try:
            return await self._lanes.send(event.topic, event.value, event.key)
        except REFUSALS as exc:
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused


def _refusal(exc: KafkaError) -> str:
    return f"undeliverable: {exc}"  # "[Error 10] MessageSizeTooLargeError: ...": the name is in it
