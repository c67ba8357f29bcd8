"""Telling subscribers about hotlist hits: signed HTTP POSTs, retried, never silently lost.

Each subscriber gets the hit's JSON as the body with ``X-Gantry-Timestamp`` (Unix seconds of the
attempt), ``X-Gantry-Signature: sha256=<hex>`` (HMAC-SHA256 of ``<timestamp>.<body>`` under the
subscriber's secret, so a recorded delivery replayed later fails the subscriber's age check) and
``X-Gantry-Delivery``, one id per hit and subscriber that stays the same across retries and
replays, so a subscriber drops repeats by it. After the last retry the delivery goes to
``webhook_dead_letters`` with the reason.

Each subscriber has its own consumer group: one that is slow or down holds back its own hits,
never another subscriber's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

import httpx
from aiokafka import ConsumerRecord
from prometheus_client import Histogram

from gantry import topics
from gantry.config import HotlistConfig, Subscriber
from gantry.events import DeadLetter, HotlistHit, dead_letter, encode
from gantry.ids import stable_id
from gantry.observability import ERRORS, MESSAGES_OUT
from stream_jobs.intake import parse_or_report
from stream_jobs.runtime.consumer import BatchConsumer

log = logging.getLogger(__name__)
STAGE = "webhooks"
SIGNATURE_HEADER = "X-Gantry-Signature"
DELIVERY_HEADER = "X-Gantry-Delivery"
TIMESTAMP_HEADER = "X-Gantry-Timestamp"
TIMEOUT_S = 5.0  # an attempt's own bound to connect, send and hear back
CONNECTIONS = 100  # per subscriber, and so the hits of a batch: all of a batch's deliveries are in flight at once
DELIVERY_SECONDS = Histogram("gantry_webhook_delivery_seconds", "Time to a subscriber's 2xx, retries included")


@dataclass(frozen=True)
class Route:
    subscriber: Subscriber
    secret: bytes

    def wants(self, hit: HotlistHit) -> bool:
        s = self.subscriber
        return (not s.lists or hit.list in s.lists) and hit.priority <= s.max_priority


def routes(settings: HotlistConfig) -> list[Route]:
    """Every subscriber with its secret, read now so a missing secret stops the worker at start."""
    return [Route(s, s.secret().get_secret_value().encode()) for s in settings.subscribers]


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def delivery_id(hit: HotlistHit, subscriber: Subscriber) -> str:
    return stable_id("delivery", hit.hit_id, subscriber.id)


def subscriber_client(timeout_s: float = TIMEOUT_S, connections: int = CONNECTIONS) -> httpx.AsyncClient:
    """The HTTP client of one subscriber's deliveries. Waiting for a free connection is not part of
    an attempt: with httpx's default, a delivery that waited ``timeout_s`` for one, behind a slow
    subscriber's other deliveries, failed unsent (a pool timeout) and used up an attempt, so a
    backlog of hits to a slow subscriber could reach the dead letters without being sent."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, pool=None),
                             limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


async def deliver(client: httpx.AsyncClient, route: Route, hit: HotlistHit, settings: HotlistConfig) -> str | None:
    """POST the hit, retrying with exponential backoff; the last failure's reason, or None on success."""
    body = encode(hit)
    delivery = delivery_id(hit, route.subscriber)
    reason = "no attempt made"
    for attempt in range(settings.webhook_retries + 1):
        if attempt:
            await asyncio.sleep(settings.webhook_backoff_s * 2 ** (attempt - 1))
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(route.secret, timestamp, body),
            DELIVERY_HEADER: delivery,
        }
        try:
            response = await client.post(route.subscriber.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            continue
        if response.is_success:
            return None
        reason = f"HTTP {response.status_code}"
    return f"{reason} after {settings.webhook_retries + 1} attempts"


class Notifier(BatchConsumer):
    """Delivers each batch of hits that one subscriber wants, all its deliveries at once.

    While the subscriber is down its batch waits out the retries; the hits themselves are not
    delayed (the screener produces them) and other subscribers, in their own groups, go on.
    """

    sources = (topics.HOTLIST_HITS,)
    max_records = CONNECTIONS  # a batch's deliveries never queue for a connection: max_batch_seconds holds

    def __init__(self, bootstrap_servers: str, settings: HotlistConfig, route: Route, *,
                 report_malformed: bool, **kwargs) -> None:
        """``report_malformed``: this subscriber's group sends unreadable hits to the dead letters
        (one group does, or each would send them once more)."""
        super().__init__(bootstrap_servers, **kwargs)
        self.report_malformed = report_malformed
        self.group_id = f"gantry-jobs-webhooks-{route.subscriber.id}"
        self.settings = settings
        self.route = route
        attempts = settings.webhook_retries + 1
        self.max_batch_seconds = attempts * TIMEOUT_S + settings.webhook_backoff_s * 2**attempts + 10
        self.client = subscriber_client()

    async def handle(self, records: list[ConsumerRecord]) -> None:
        hits = []
        for record in records:
            hit = parse_or_report(HotlistHit, record.value, STAGE, topics.HOTLIST_HITS)
            if isinstance(hit, DeadLetter):
                if self.report_malformed:
                    await self.outbox.put(topics.DEAD_LETTERS, value=encode(hit))
            elif self.route.wants(hit):
                hits.append((record.value, hit))
        outcomes = await asyncio.gather(*(self._deliver(hit) for _, hit in hits))
        subscriber = self.route.subscriber.id
        for (raw, hit), failure in zip(hits, outcomes, strict=True):
            if failure is None:
                MESSAGES_OUT.labels(STAGE, subscriber).inc()
                continue
            ERRORS.labels(STAGE, "webhook_failed").inc()
            letter = dead_letter(raw, f"subscriber {subscriber}: {failure}", stage=STAGE,
                                 source_topic=topics.HOTLIST_HITS)
            await self.outbox.put(topics.WEBHOOK_DEAD_LETTERS, key=hit.hit_id.encode(), value=encode(letter))

    async def _deliver(self, hit: HotlistHit) -> str | None:
        with DELIVERY_SECONDS.time():
            return await deliver(self.client, self.route, hit, self.settings)

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.client.aclose()
