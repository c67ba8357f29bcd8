"""The search API: reads by plate, camera and time, a plate's timeline, hits by list, pictures.

Every route needs a bearer token (:mod:`api.auth`); none is 401, a role that may not see what
it asks for is 403. An operator's every search (and every picture fetched) needs a ``reason`` and
is written to ``audit_log``: who (the token's name), what (the filter, with any plate or pattern
as its keyed pseudonym, so the log keeps no plate in clear and outlives no erasure), why (the
reason) and how many rows it returned. Times before the caller's look-back are refused, and a
search that gives no ``from`` starts at the look-back.

Queries go to the warehouse through one clickhouse-connect client, every value bound as a
parameter (:mod:`api.queries`). The OpenAPI document is at ``/openapi.json``, its pages at ``/docs``.
"""


import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated

from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from api import queries
from api.auth import Principal, TokenBook, load_grants
from api.live import hit_stream
from api.models import CameraOut, CameraVisit, HitPage, Presenter, ReadOut, ReadPage, Timeline
from gantry.config import GantryConfig
from gantry.errors import GantryError
from gantry.runtime import endpoints
from ingest.snapshots import SnapshotStore, store_url

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="a token from api.tokens_file or $GANTRY_API_TOKENS")


class Api:
    """What the routes share: the warehouse client, the token book, the picture store, the presenter."""

    def __init__(self, config: GantryConfig, client_factory: Callable[[], Client], book: TokenBook,
                 store: SnapshotStore, pseudonym_key: str, bootstrap: Callable[[], str]) -> None:
        self.config = config
        self._client_factory = client_factory
        self._client: Client | None = None
        self.book = book
        self.store = store
        self.present = Presenter(config, pseudonym_key)
        self.bootstrap = bootstrap

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def rows(self, query: queries.Query) -> list[tuple]:
        return self.client.query(query.sql, parameters=query.parameters).result_rows

    def audit(self, who: Principal, action: str, subject: dict, reason: str, rows: int) -> None:
        self.client.insert(
            "audit_log",
            [(datetime.now(UTC), who.name, action, json.dumps(subject, sort_keys=True, default=str), reason,
              {"rows_returned": rows})],
            column_names=["ts", "actor", "action", "subject", "reason", "rows_removed"],
        )  # fmt: skip


def _answer(model: BaseModel) -> JSONResponse:
    """A model without its empty fields (no ``plate: null`` for analysts), but a page's
    ``next_cursor`` always there, null on the last page."""
    body = model.model_dump(mode="json", exclude_none=True)
    if "next_cursor" in type(model).model_fields:
        body["next_cursor"] = model.next_cursor  # type: ignore[attr-defined]
    return JSONResponse(body)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def create_app(config: GantryConfig, *, client_factory: Callable[[], Client] | None = None,
               book: TokenBook | None = None, store: SnapshotStore | None = None,
               bootstrap: Callable[[], str] | None = None) -> FastAPI:
    """The API for ``config``; the keyword arguments replace what it would otherwise open itself."""
    if client_factory is None:
        from warehouse.client import open_warehouse

        def client_factory() -> Client:
            return open_warehouse(config)

    book = book if book is not None else TokenBook(load_grants(config.api), config.api)
    state = Api(
        config, client_factory, book, store or SnapshotStore(store_url(config)),
        config.privacy.pseudonym_key().get_secret_value(),
        bootstrap or (lambda: endpoints(config).bootstrap_servers),
    )  # fmt: skip
    app = FastAPI(
        title="Gantry search API",
        version="1",
        description="Plate reads, timelines, hotlist hits and their pictures; live hits as Server-Sent Events. "
        "Bearer tokens with roles: operator (plates, pictures; every search audited, `reason` required) "
        "and analyst (pseudonymised plates only, no pictures).",
    )
    app.state.api = state

    @app.exception_handler(GantryError)
    @app.exception_handler(ClickHouseError)
    async def _warehouse_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"the warehouse cannot answer now: {exc}"}, status_code=503)

    _routes(app, state)
    return app


def _routes(app: FastAPI, api: Api) -> None:  # noqa: C901 - one place that lists every route
    settings = api.config.api

    def principal(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        found = api.book.principal(f"Bearer {credentials.credentials}" if credentials else None)
        if found is None:
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        return found

    Who = Annotated[Principal, Depends(principal)]
    Reason = Annotated[str | None, Query(max_length=500, description="why you search: required for operators, audited")]
    From = Annotated[datetime | None, Query(alias="from", description="ISO time, UTC unless it says; default: your look-back")]
    To = Annotated[datetime | None, Query(description="ISO time, exclusive")]
    Cameras = Annotated[list[str] | None, Query(alias="camera", description="repeat for several cameras")]
    Limit = Annotated[int | None, Query(ge=1, le=settings.max_page_size, description="rows per page")]
    Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
    Match = Annotated[str, Query(pattern="^(exact|confusable|wildcard)$",
                                 description="exact; confusable (O/0, I/1, B/8, S/5, Z/2 one glyph away); "
                                 "wildcard (? one character, * any run)")]  # fmt: skip

    def needs_reason(who: Principal, reason: str | None) -> str:
        if who.sees_plates and not (reason or "").strip():
            raise HTTPException(400, "operators must give a `reason` for every search: it goes to the audit log")
        return (reason or "").strip()

    def window(who: Principal, since: datetime | None, until: datetime | None) -> tuple[int, int | None]:
        since, until = _utc(since), _utc(until)
        earliest = who.earliest()
        if since is not None and since < earliest:
            raise HTTPException(403, f"`from` is beyond your role's look-back of {who.max_lookback_days} days "
                                     f"(the earliest is {earliest.isoformat(timespec='seconds')})")  # fmt: skip
        if until is not None and until <= earliest:
            raise HTTPException(403, f"`to` is beyond your role's look-back of {who.max_lookback_days} days")
        return queries.to_ms(since or earliest), (queries.to_ms(until) if until else None)

    def run(query: queries.Query) -> list[tuple]:
        return api.rows(query)

    def subject(**what: object) -> dict:
        """The audited filter: plates and patterns as pseudonyms, empty filters left out."""
        plate = what.pop("plate", None)
        if plate:
            wildcard = what.get("match") == "wildcard"
            what["plate_pseudonym"] = api.present.pseudonym(plate.upper() if wildcard else _normalised(plate) or plate)
        return {k: v for k, v in what.items() if v not in (None, [], ())}

    def built(make: Callable[[], queries.Query]) -> queries.Query:
        try:
            return make()
        except queries.BadQuery as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/v1/reads", response_model=ReadPage, tags=["search"])
    def search_reads(who: Who, plate: Annotated[str | None, Query(max_length=32)] = None, match: Match = "exact",
                     camera: Cameras = None, since: From = None, to: To = None,
                     min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None, limit: Limit = None,
                     cursor: Cursor = None, reason: Reason = None) -> ReadPage:
        """Reads by plate (exact, confusable or wildcard), camera and time: newest first, in pages."""
        why = needs_reason(who, reason)
        if plate and not who.sees_plates:
            raise HTTPException(403, "analysts cannot search by plate: filter by camera and time")
        since_ms, until_ms = window(who, since, to)
        size = limit or settings.default_page_size
        f = queries.Filter(since_ms=since_ms, until_ms=until_ms, plate=plate, match=match,  # type: ignore[arg-type]
                           cameras=tuple(camera or ()), min_confidence=min_confidence, cursor=cursor, limit=size)
        items, next_cursor = queries.page(run(built(lambda: queries.reads_query(f))), queries.READ_COLUMNS, size,
                                          "read_id")
        searched = _normalised(plate) if plate and match != "wildcard" else None
        page = ReadPage(items=[api.present.read(r, who, searched) for r in items], next_cursor=next_cursor)
        if who.sees_plates:
            api.audit(who, "search_reads", subject(plate=plate, match=match if plate else None, camera=camera,
                      since=since, to=to, cursor=cursor), why, len(items))  # fmt: skip
        return _answer(page)  # type: ignore[return-value]

    @app.get("/v1/plates/{plate}/timeline", response_model=Timeline,
             tags=["search"])
    def timeline(who: Who, plate: str, match: Match = "exact", since: From = None, to: To = None,
                 limit: Limit = None, cursor: Cursor = None, reason: Reason = None) -> Timeline:
        """A plate's sightings, oldest first, and the cameras that saw it (operators only)."""
        why = needs_reason(who, reason)
        if not who.sees_plates:
            raise HTTPException(403, "analysts cannot follow a plate")
        since_ms, until_ms = window(who, since, to)
        size = limit or settings.max_page_size
        f = queries.Filter(since_ms=since_ms, until_ms=until_ms, plate=plate, match=match,  # type: ignore[arg-type]
                           cursor=cursor, limit=size)
        rows = run(built(lambda: queries.reads_query(f, descending=False)))
        items, next_cursor = queries.page(rows, queries.READ_COLUMNS, size, "read_id")
        searched = _normalised(plate) if match != "wildcard" else None
        sightings = [api.present.read(r, who, searched) for r in items]
        visits: dict[str, CameraVisit] = {}
        for s in sightings:
            visit = visits.get(s.camera.id)
            if visit is None:
                visits[s.camera.id] = CameraVisit(camera=s.camera, first_seen=s.ts, last_seen=s.ts, reads=1)
            else:
                visit.last_seen, visit.reads = s.ts, visit.reads + 1
        api.audit(who, "plate_timeline", subject(plate=plate, match=match, since=since, to=to, cursor=cursor), why,
                  len(items))
        return _answer(Timeline(plate=searched or plate.upper(), match=match, sightings=sightings,  # type: ignore[return-value]
                                cameras=list(visits.values()), next_cursor=next_cursor))

    @app.get("/v1/hits", response_model=HitPage, tags=["search"])
    def search_hits(who: Who, list_: Annotated[list[str] | None, Query(alias="list", description="repeatable")] = None,
                    max_priority: Annotated[int | None, Query(ge=1, le=5)] = None, camera: Cameras = None,
                    plate: Annotated[str | None, Query(max_length=32)] = None, match: Match = "exact",
                    since: From = None, to: To = None, limit: Limit = None, cursor: Cursor = None,
                    reason: Reason = None) -> HitPage:
        """Hotlist hits by list, priority, camera, plate and time: newest first, in pages."""
        why = needs_reason(who, reason)
        if plate and not who.sees_plates:
            raise HTTPException(403, "analysts cannot search by plate")
        since_ms, until_ms = window(who, since, to)
        size = limit or settings.default_page_size
        f = queries.Filter(since_ms=since_ms, until_ms=until_ms, plate=plate, match=match,  # type: ignore[arg-type]
                           cameras=tuple(camera or ()), lists=tuple(list_ or ()), max_priority=max_priority,
                           cursor=cursor, limit=size)
        items, next_cursor = queries.page(run(built(lambda: queries.hits_query(f))), queries.HIT_COLUMNS, size, "hit_id")
        if who.sees_plates:
            api.audit(who, "search_hits", subject(plate=plate, match=match if plate else None, list=list_,
                      max_priority=max_priority, camera=camera, since=since, to=to, cursor=cursor), why,
                      len(items))  # fmt: skip
        return _answer(HitPage(items=[api.present.hit(r, who) for r in items], next_cursor=next_cursor))  # type: ignore[return-value]

    def within_lookback(who: Principal, read_id: str, ts_ms: int) -> None:
        if ts_ms < queries.to_ms(who.earliest()):
            raise HTTPException(403, f"read {read_id} is beyond your role's look-back of {who.max_lookback_days} days")

    def one_read(who: Principal, read_id: str) -> dict:
        rows = run(queries.read_query(read_id))
        if not rows:
            raise HTTPException(404, f"no read {read_id}")
        row = dict(zip(queries.READ_COLUMNS, rows[0], strict=True))
        within_lookback(who, read_id, row["ts_ms"])
        return row

    def picture_of(who: Principal, read_id: str) -> str | None:
        """The read's ``image_ref``; once the read has expired, the one its hit or charge keeps."""
        rows = run(queries.read_query(read_id))
        if rows:
            row = dict(zip(queries.READ_COLUMNS, rows[0], strict=True))
            ref, ts_ms = row["image_ref"], row["ts_ms"]
        else:
            kept = run(queries.evidence_query(read_id))
            if not kept:
                raise HTTPException(404, f"no read {read_id}")
            ref, ts_ms = kept[0]
        within_lookback(who, read_id, ts_ms)
        return ref

    @app.get("/v1/reads/{read_id}", response_model=ReadOut, tags=["search"])
    def get_read(who: Who, read_id: str, reason: Reason = None) -> ReadOut:
        """One read, with the address of its picture for operators."""
        why = needs_reason(who, reason)
        row = one_read(who, read_id)
        if who.sees_plates:
            api.audit(who, "view_read", {"read_id": read_id}, why, 1)
        return _answer(api.present.read(row, who))  # type: ignore[return-value]

    @app.get("/v1/reads/{read_id}/image", tags=["search"],
             responses={200: {"content": {"image/jpeg": {}}, "description": "the read's picture"}})
    def get_image(who: Who, read_id: str, reason: Reason = None) -> Response:
        """The picture of a read, from the snapshot store (operators only; audited); also after
        the read itself has expired, for as long as a hit or a charge it caused keeps it."""
        why = needs_reason(who, reason)
        if not who.sees_plates:
            raise HTTPException(403, "analysts cannot see pictures")
        image_ref = picture_of(who, read_id)
        if not image_ref:
            raise HTTPException(404, f"read {read_id} kept no picture")
        try:
            jpeg = api.store.get(image_ref)
        except (OSError, ValueError) as exc:
            log.warning("picture of read %s unavailable: %s", read_id, exc)
            raise HTTPException(404, f"the picture of read {read_id} is no longer in the snapshot store") from None
        api.audit(who, "view_image", {"read_id": read_id}, why, 1)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @app.get("/v1/cameras", response_model=list[CameraOut], tags=["cameras"])
    def cameras(who: Who) -> list[CameraOut]:
        """The configured cameras, with their names and positions (for maps)."""
        return api.present.cameras()

    @app.get("/v1/hits/stream", tags=["live"],
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`event: ready` once listening, then one `event: hit` per hit"}})
    async def stream_hits(request: Request, who: Who,
                          list_: Annotated[list[str] | None, Query(alias="list", description="repeatable")] = None,
                          max_priority: Annotated[int | None, Query(ge=1, le=5)] = None,
                          reason: Reason = None) -> StreamingResponse:
        """Hotlist hits as they happen (Server-Sent Events), from now on: every client sees every hit."""
        why = needs_reason(who, reason)
        try:
            bootstrap = api.bootstrap()
        except Exception as exc:
            raise HTTPException(503, f"no broker: {exc}") from None
        if who.sees_plates:
            api.audit(who, "watch_hits", subject(list=list_, max_priority=max_priority), why, 0)
        events = hit_stream(bootstrap, lambda hit: api.present.hit(hit, who), set(list_ or ()), max_priority,
                            request.is_disconnected)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/live", response_class=HTMLResponse, include_in_schema=False)
    def live_page() -> HTMLResponse:
        """The control-room page: hits as they arrive, with picture, camera and position."""
        return HTMLResponse(files("api").joinpath("live.html").read_text(),
                            headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                     "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")


def _normalised(plate: str) -> str | None:
    from gantry.events import normalise_plate

    try:
        return normalise_plate(plate)
    except ValueError:
        return None
