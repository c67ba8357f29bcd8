"""Telling subscribers about hotlist hits: signed HTTP POSTs, retried, never silently lost.

Each subscriber gets the hit's JSON as the body with ``X-Gantry-Signature: sha256=<hex>`` (HMAC-
SHA256 of the body under the subscriber's secret) and ``X-Gantry-Delivery``, one id per hit and
subscriber that stays the same across retries and replays, so a subscriber drops repeats by it.
After the last retry the delivery goes to ``webhook_dead_letters`` with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass

import httpx
from aiokafka import ConsumerRecord
from prometheus_client import Histogram

from gantry import topics
from gantry.config import HotlistConfig, Subscriber
from gantry.events import DeadLetter, HotlistHit, dead_letter, encode
from stream_jobs.fastpath import BatchConsumer
from stream_jobs.intake import parse_or_report
from gantry.ids import stable_id
from gantry.observability import ERRORS, MESSAGES_OUT

log = logging.getLogger(__name__)
STAGE = "webhooks"
SIGNATURE_HEADER = "X-Gantry-Signature"
DELIVERY_HEADER = "X-Gantry-Delivery"
TIMEOUT_S = 5.0
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


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def delivery_id(hit: HotlistHit, subscriber: Subscriber) -> str:
    return stable_id("delivery", hit.hit_id, subscriber.id)


async def deliver(client: httpx.AsyncClient, route: Route, hit: HotlistHit, settings: HotlistConfig) -> str | None:
    """POST the hit, retrying with exponential backoff; the last failure's reason, or None on success."""
    body = encode(hit)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(route.secret, body),
        DELIVERY_HEADER: delivery_id(hit, route.subscriber),
    }
    reason = "no attempt made"
    for attempt in range(settings.webhook_retries + 1):
        if attempt:
            await asyncio.sleep(settings.webhook_backoff_s * 2 ** (attempt - 1))
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
    """Delivers each batch of hits to the subscribers that want them, all deliveries at once.

    A subscriber that is down holds its batch for the retry time; the hits themselves are not
    delayed (they are produced by the screener) and other batches wait at most that long.
    """

    group_id = "gantry-jobs-webhooks"
    sources = (topics.HOTLIST_HITS,)

    def __init__(self, bootstrap_servers: str, settings: HotlistConfig, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.settings = settings
        attempts = settings.webhook_retries + 1
        self.max_batch_seconds = attempts * TIMEOUT_S + settings.webhook_backoff_s * 2**attempts + 10
        self.routes = routes(settings)
        self.client = httpx.AsyncClient(timeout=TIMEOUT_S)

    async def handle(self, records: list[ConsumerRecord]) -> None:
        hits = []
        for record in records:
            hit = parse_or_report(HotlistHit, record.value, STAGE, topics.HOTLIST_HITS)
            if isinstance(hit, DeadLetter):
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(hit))
            else:
                hits.append((record.value, hit))
        work = [(raw, hit, route) for raw, hit in hits for route in self.routes if route.wants(hit)]
        outcomes = await asyncio.gather(*(self._deliver(route, hit) for _, hit, route in work))
        for (raw, hit, route), failure in zip(work, outcomes):
            if failure is None:
                MESSAGES_OUT.labels(STAGE, route.subscriber.id).inc()
                continue
            ERRORS.labels(STAGE, "webhook_failed").inc()
            letter = dead_letter(raw, f"subscriber {route.subscriber.id}: {failure}", stage=STAGE,
                                 source_topic=topics.HOTLIST_HITS)
            await self.outbox.put(topics.WEBHOOK_DEAD_LETTERS, key=hit.hit_id.encode(), value=encode(letter))

    async def _deliver(self, route: Route, hit: HotlistHit) -> str | None:
        with DELIVERY_SECONDS.time():
            return await deliver(self.client, route, hit, self.settings)

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.client.aclose()
