"""``gantry ingest serve``: the HTTP endpoint where edge ANPR cameras push their plate reads.

Every request goes through the same steps, each with its own answer when it fails:

1. the token names the camera (unknown or missing token: 401);
2. the body is within ``ingest.max_body_bytes`` (413), of a type the route speaks (415) and valid
   in its format (400, naming the field);
3. the camera is configured (422, logged) and is the one the token belongs to (403);
4. the read's time is within ``event_time`` of the request's arrival (400), pictures are stored
   and the read is delivered; the answer is 200 once the broker acknowledged
   it, 202 once it is in the on-disk spool (or, refused by the broker, in its quarantine), 503
   with Retry-After when neither is possible.

A read of a gate camera (``sites``) is answered with the barrier's decision too, in the same
response (``decision``, ``reason``, ``list``, ``holder``, ``amount``; the access-query form also
``valid``), decided from the endpoint's local copy of the lists (:mod:`sites.feed`), so it is
answered while the broker is down; the decision is delivered to ``gate_decisions`` with the read.

Each camera's last five pictures are listed at ``GET /v1/devices/{camera}/snapshots`` (2N's
snapshots kept per device, :mod:`ingest.devices`), for that camera's own token.

Nothing is produced for a rejected request, and no request can crash the server.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gantry import topics
from gantry.config import GantryConfig, IngestConfig
from gantry.errors import ConfigError
from gantry.events import PlateRead, encode
from gantry.observability import ERRORS, MESSAGES_IN, MESSAGES_OUT, serve_health
from gantry.site_events import GateDecision
from ingest.auth import TokenBook, load_tokens
from ingest.delivery import Delivery
from ingest.devices import KEPT, find_snapshot, last_snapshots
from ingest.edge_formats import (
    EdgeEvent,
    EdgeFormatError,
    Part,
    parse_access_query,
    parse_gantry_json,
    parse_hikvision,
)
from ingest.publish import STAGE, UnknownCamera, check_camera
from ingest.reads import ReadRejected, make_read
from ingest.snapshots import SnapshotStore, store_url
from ingest.spool import Spool, SpoolFull, spool_dir
from sites.feed import SiteFeed
from sites.gatekeeper import Gatekeeper

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
Parser = Callable[[web.Request], Awaitable[EdgeEvent]]
MAX_BODY = web.AppKey("max_body_bytes", int)
# Many cameras send Basic credentials only after a challenge; a full spool asks for a retry later.
_CHALLENGES = {401: {"WWW-Authenticate": 'Basic realm="gantry"'}, 503: {"Retry-After": str(RETRY_AFTER_S)}}


class Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def build_app(
    config: GantryConfig, delivery: Delivery, snapshots: SnapshotStore, tokens: TokenBook
) -> web.Application:
    """The aiohttp application; it starts ``delivery`` (and the gates' feed) with itself and
    stops them on shutdown."""
    gatekeeper = Gatekeeper(config.sites)
    intake = Intake(config, delivery, snapshots, tokens, gatekeeper)
    app = web.Application(client_max_size=config.ingest.max_body_bytes)
    app[MAX_BODY] = config.ingest.max_body_bytes

    async def run_delivery(_: web.Application) -> AsyncIterator[None]:
        await delivery.start()
        feed = SiteFeed(delivery.bootstrap_servers, gatekeeper, config.data_dir / "ingest-sites")
        if gatekeeper:
            await feed.start(wait_s=config.ingest.ack_timeout_s)
        yield
        if gatekeeper:
            await feed.stop()
        await delivery.stop()

    app.cleanup_ctx.append(run_delivery)
    app.add_routes(
        [
            web.post("/v1/reads", intake.route(gantry_json)),
            web.post("/isapi/anpr", intake.route(hikvision)),
            web.get("/v1/plate", intake.route(access_query, valid=True)),
            web.post("/v1/plate", intake.route(plate_post, valid=True)),
            web.get("/v1/devices/{camera}/snapshots", intake.answering(intake.list_snapshots)),
            web.get("/v1/devices/{camera}/snapshots/{read_id}", intake.answering(intake.snapshot)),
        ]
    )
    return app


class Intake:
    def __init__(self, config: GantryConfig, delivery: Delivery, snapshots: SnapshotStore, tokens: TokenBook,
                 gatekeeper: Gatekeeper):
        self.config = config
        self.delivery = delivery
        self.snapshots = snapshots
        self.tokens = tokens
        self.gatekeeper = gatekeeper

    def route(self, parse: Parser, *, valid: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
        """``valid``: the answer says ``valid=true|false`` too, as access units expect."""
        async def accept(request: web.Request) -> web.Response:
            MESSAGES_IN.labels(STAGE, "http").inc()
            return await self.accept(request, parse, valid)

        return self.answering(accept)

    @staticmethod
    def answering(handler: Callable[[web.Request], Awaitable[web.Response]]
                  ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler, with a refusal answered as its status and the error in JSON."""
        async def handle(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except Rejected as rejected:
                ERRORS.labels(STAGE, rejected.reason).inc()
                headers = _CHALLENGES.get(rejected.status)
                return web.json_response({"error": str(rejected)}, status=rejected.status, headers=headers)

        return handle

    def token_camera(self, request: web.Request) -> str:
        """The camera the request's token names."""
        camera_id = self.tokens.camera_of(request.headers)
        if camera_id is None:
            raise Rejected(401, "unauthorized", "missing or unknown camera token")
        return camera_id

    def check_known(self, request: web.Request, camera_id: str) -> None:
        try:
            check_camera(self.config, camera_id)
        except UnknownCamera as exc:
            log.warning("rejected a request from %s: %s", request.remote, exc)
            raise Rejected(422, "unknown_camera", str(exc)) from None

    def device(self, request: web.Request) -> str:
        """The camera in the path, once the token shows the request comes from that camera."""
        camera_id = self.token_camera(request)
        if request.match_info["camera"] != camera_id:
            raise Rejected(403, "wrong_camera", f"camera: this token belongs to camera {camera_id!r}")
        self.check_known(request, camera_id)
        return camera_id

    async def list_snapshots(self, request: web.Request) -> web.Response:
        camera_id = self.device(request)
        try:
            kept = await asyncio.to_thread(last_snapshots, self.snapshots, camera_id)
        except OSError as exc:
            raise self.store_failed(exc) from None
        return web.json_response({"camera_id": camera_id, "snapshots": [s.to_json() for s in kept]})

    async def snapshot(self, request: web.Request) -> web.Response:
        camera_id = self.device(request)
        try:
            kept = await asyncio.to_thread(find_snapshot, self.snapshots, camera_id, request.match_info["read_id"])
            if kept is None:
                raise Rejected(404, "no_snapshot", f"no snapshot of that read among camera {camera_id!r}'s last {KEPT}")
            jpeg = await asyncio.to_thread(self.snapshots.get, kept.image_ref)
        except FileNotFoundError:
            raise Rejected(404, "no_snapshot", "the picture is no longer in the snapshot store") from None
        except OSError as exc:
            raise self.store_failed(exc) from None
        return web.Response(body=jpeg, content_type="image/jpeg")

    @staticmethod
    def store_failed(exc: OSError) -> Rejected:
        log.error("snapshot store failed: %s", exc)
        return Rejected(503, "snapshot_store", "the snapshot store is unavailable")

    async def accept(self, request: web.Request, parse: Parser, valid: bool) -> web.Response:
        camera_id = self.token_camera(request)
        if (request.content_length or 0) > request.app[MAX_BODY]:
            raise _too_large(request)
        try:
            event = await parse(request)
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(request) from None
        except EdgeFormatError as exc:
            raise Rejected(400, "invalid", str(exc)) from None
        if event.camera_id is not None and event.camera_id != camera_id:
            raise Rejected(403, "wrong_camera", f"camera_id: this token belongs to camera {camera_id!r}")
        self.check_known(request, camera_id)
        if event.ignored:
            return web.json_response({"status": "ignored", "why": event.ignored})
        read = await self.plate_read(event, camera_id)
        decision = self.gatekeeper.decide(read)
        deliveries = [self.delivery.deliver(topics.PLATE_READS, read.plate.encode(), encode(read))]
        if decision is not None:
            deliveries.append(self.delivery.deliver(topics.GATE_DECISIONS, read.plate.encode(), encode(decision)))
        try:
            outcome, *_ = await asyncio.gather(*deliveries)
        except SpoolFull as exc:
            raise Rejected(503, "spool_full", f"the broker is unreachable and {exc}") from None
        MESSAGES_OUT.labels(STAGE, topics.PLATE_READS).inc()
        answer = {"read_id": read.read_id, "status": outcome}
        if decision is not None:
            MESSAGES_OUT.labels(STAGE, topics.GATE_DECISIONS).inc()
            answer |= barrier_answer(decision, valid=valid)
        return web.json_response(answer, status=200 if outcome == "acked" else 202)

    async def plate_read(self, event: EdgeEvent, camera_id: str) -> PlateRead:
        received_at = datetime.now(UTC)
        try:
            if event.snapshots:  # file or S3 writes: off the event loop
                return await asyncio.to_thread(
                    make_read, event, camera_id, received_at, self.snapshots, self.config.event_time
                )
            return make_read(event, camera_id, received_at, self.snapshots, self.config.event_time)
        except ReadRejected as exc:
            raise Rejected(400, "invalid", str(exc)) from None
        except OSError as exc:
            log.error("snapshot store failed: %s", exc)
            raise Rejected(503, "snapshot_store", "the snapshot store is unavailable") from None


def barrier_answer(decision: GateDecision, *, valid: bool) -> dict:
    """What the barrier is told: the decision, why, and what it matched (or the fee due)."""
    answer = decision.model_dump(mode="json", include={"decision", "reason", "list", "holder", "match", "flagged",
                                                       "amount", "currency", "entry_ts", "decision_id"},
                                 exclude_none=True)
    if valid:
        answer["valid"] = decision.opens
    return answer


async def plate_post(request: web.Request) -> EdgeEvent:
    """``POST /v1/plate``: Gantry's JSON read, or the access-query form with an optional JPEG."""
    if request.content_type == "application/json":
        return await gantry_json(request)
    return await access_query(request)


async def gantry_json(request: web.Request) -> EdgeEvent:
    _require_type(request, "application/json")
    return parse_gantry_json(await request.read())


async def hikvision(request: web.Request) -> EdgeEvent:
    if request.content_type.startswith("multipart/"):
        return parse_hikvision(await _multipart(request))
    if "xml" not in request.content_type:
        raise _unsupported(request, "application/xml or multipart/form-data")
    return parse_hikvision([Part(request.content_type, await request.read())])


async def access_query(request: web.Request) -> EdgeEvent:
    snapshot = None
    if request.method == "POST" and request.can_read_body:
        _require_type(request, "image/jpeg")
        snapshot = await request.read()
    return parse_access_query(request.query, snapshot or None)


async def _multipart(request: web.Request) -> list[Part]:
    """The parts of a multipart body, held to the same size limit as any other body."""
    parts, budget = [], request.app[MAX_BODY]
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader):
                data = bytearray()
                while chunk := await part.read_chunk():
                    data += chunk
                    if len(data) > budget:
                        raise _too_large(request)
                budget -= len(data)
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                parts.append(Part(content_type, bytes(data), part.name or "", part.filename or ""))
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:  # aiohttp: broken body
        raise EdgeFormatError(f"multipart body: {exc}") from None
    return parts


def _too_large(request: web.Request) -> Rejected:
    return Rejected(413, "too_large", f"body larger than {request.app[MAX_BODY]} bytes")


def _require_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        raise _unsupported(request, expected)


def _unsupported(request: web.Request, expected: str) -> Rejected:
    return Rejected(
        415, "unsupported_type", f"Content-Type: expected {expected}, got {request.content_type!r}"
    )


def serve(config: GantryConfig, bootstrap_servers: str, *, host: str, port: int, health_port: int) -> None:
    """Run the endpoint until SIGINT/SIGTERM; events still spooled then are replayed on the next start."""
    settings = config.ingest
    tls = tls_context(settings)
    tokens = TokenBook(load_tokens(settings))
    if not tokens:
        log.warning(
            "no camera tokens (${%s} or ingest.tokens_file): every request gets 401", settings.tokens_env
        )
    spool = Spool(spool_dir(config), settings.spool_max_bytes, settings.spool_max_events)
    if len(spool):
        log.info("%d events in the spool from the last run will be replayed first", len(spool))
    delivery = Delivery(bootstrap_servers, spool, settings.ack_timeout_s, producers=settings.producers)
    app = build_app(config, delivery, SnapshotStore(store_url(config)), tokens)
    health = serve_health(health_port, ready=lambda: True)
    log.info("health and metrics on port %d", health.server_port)
    web.run_app(app, host=host, port=port, access_log=None, print=log.info, ssl_context=tls)


def tls_context(settings: IngestConfig) -> ssl.SSLContext | None:
    """HTTPS when a certificate is configured: camera tokens and plates cross networks the city
    does not own. TLS 1.2 at least; an unreadable or mismatched pair stops start-up, naming it."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ingest.tls_cert_file {settings.tls_cert_file} / ingest.tls_key_file "
                          f"{settings.tls_key_file}: {exc}") from None
    return context
