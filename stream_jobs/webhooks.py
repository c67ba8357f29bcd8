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
from prometheus_client import Histogram

from gantry import topics
from gantry.config import HotlistConfig, Subscriber
from gantry.events import HotlistHit, dead_letter, encode
from gantry.ids import stable_id
from gantry.observability import ERRORS, MESSAGES_OUT

log = logging.getLogger(__name__)
STAGE = "webhooks"
SIGNATURE_HEADER = "X-Gantry-Signature"
DELIVERY_HEADER = "X-Gantry-Delivery"
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


def register(jobs) -> None:
    settings = jobs.config.hotlist
    subscribed = routes(settings)
    if not subscribed:
        return
    dead_letters = jobs.topic(topics.WEBHOOK_DEAD_LETTERS)
    client = httpx.AsyncClient(timeout=5.0)

    @jobs.app.agent(jobs.topic(topics.HOTLIST_HITS), name="webhooks", concurrency=16)
    async def notify(stream) -> None:
        async for raw in stream:
            hit = HotlistHit.model_validate_json(raw)
            for route in (r for r in subscribed if r.wants(hit)):
                with DELIVERY_SECONDS.time():
                    failure = await deliver(client, route, hit, settings)
                if failure is None:
                    MESSAGES_OUT.labels(STAGE, route.subscriber.id).inc()
                    continue
                ERRORS.labels(STAGE, "webhook_failed").inc()
                letter = dead_letter(raw, f"subscriber {route.subscriber.id}: {failure}", stage=STAGE,
                                     source_topic=topics.HOTLIST_HITS)
                await dead_letters.send(key=hit.hit_id.encode(), value=encode(letter))
