"""The embedded warehouse: chDB behind the ClickHouse HTTP interface.

chDB lets one process open a data directory, yet the sink, the exports, Grafana and the CLI all
need the warehouse at once. So in the embedded stack this process alone owns the directory and
speaks enough of ClickHouse's HTTP protocol that every other client (clickhouse-connect, Grafana's
ClickHouse plugin in HTTP mode, curl) uses it exactly as it would use a ClickHouse server.

What is served: GET/POST ``/?query=`` with the statement in the URL, the body or both (joined by a
newline, as ClickHouse does); ``database``/``default_format``/``query_id`` and ``param_*`` URL
parameters; every other URL parameter is a setting; request bodies compressed with gzip, deflate,
zstd or lz4; chunked uploads; ``INSERT ... FORMAT X`` followed by data in any format chDB
reads; ``/ping``. Responses are never compressed (the clients are on this machine). A failed
statement answers ClickHouse's ``Code: N. DB::Exception: ...`` text and the
``X-ClickHouse-Exception-Code`` header (HTTP 401 for a missing credential, 403 for what may not
run, 413 for a body over the limit, else 500); it never stops the server.

Who may ask what (see docs/threat-model.md): a request must name this machine in ``Host``
(:mod:`warehouse.access`), carry the credential when one is configured, and stay under the body
limit once decompressed; GET runs under ClickHouse's ``readonly=1``; every statement passes
:class:`warehouse.guard.Guard` before it runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame
from backports import zstd

from gantry.observability import ERRORS, MESSAGES_IN, serve_health
from warehouse.access import Policy, host_allowed, presented
from warehouse.guard import Guard, check_settings, sql_literal

log = logging.getLogger(__name__)

STAGE = "warehouse-serve"

# URL parameters that steer the HTTP exchange rather than being ClickHouse settings.
_TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "query_id", "user", "password", "quota_key",
        "session_id", "session_timeout", "session_check", "compress", "decompress",
        "enable_http_compression", "wait_end_of_query", "client_protocol_version", "role",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "buffer_size",
        "cancel_http_readonly_queries_on_client_close", "http_zlib_compression_level",
        "add_http_cors_header", "max_result_bytes", "output_format_pretty_color",
    }
)  # fmt: skip
_INSERT_WITH_DATA = re.compile(
    rb"\s*(INSERT\s+INTO\s+.+?)(\s+SETTINGS\s+.+?)?\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n)?", re.IGNORECASE | re.DOTALL
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_RESULT_STATEMENTS = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)")
_CODE_NOT_IMPLEMENTED = 48
_CODE_LIMIT_EXCEEDED = 290
_CODE_AUTHENTICATION_FAILED = 516
_CODE_STD_EXCEPTION = 1001
# ClickHouse's HTTP statuses for the refusals: 401 asks for the credential, 403 refuses the deed.
_STATUS = {_CODE_AUTHENTICATION_FAILED: 401, 164: 403, 497: 403, _CODE_LIMIT_EXCEEDED: 413}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class QueryFailed(Exception):
    """A statement the engine (or this server) refused; ``code`` is ClickHouse's error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _too_large(limit: int) -> QueryFailed:
    return QueryFailed(
        f"Code: {_CODE_LIMIT_EXCEEDED}. DB::Exception: the request body is over the server's limit of {limit} bytes "
        "(gantry warehouse serve --max-body-bytes). (LIMIT_EXCEEDED)",
        _CODE_LIMIT_EXCEEDED,
    )


@dataclass
class Request:
    """One HTTP request reduced to what the engine needs."""

    statement: bytes
    database: str | None = None
    default_format: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    query_id: str = ""
    read_only: bool = False


@dataclass
class Outcome:
    body: bytes
    fmt: str | None
    summary: dict[str, str]


class Engine:
    """The process's one chDB engine; calls are serialised and each gets a fresh session.

    A fresh connection per call keeps one request's ``USE`` and settings from leaking into the
    next; connecting to an open engine costs about a millisecond. The anchor connection keeps the
    engine open between calls.
    """

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = str(path.resolve())
        self._anchor = chdb.connect(self.path)
        self._lock = threading.Lock()
        self._spool = Path(tempfile.mkdtemp(prefix="gantry-warehouse-"))
        self._guard = Guard(self._anchor)
        self.timezone = self._anchor.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        self.version = self._anchor.query("SELECT version()", "TabSeparated").bytes().decode().strip()

    def execute(self, request: Request) -> Outcome:
        insert = _INSERT_WITH_DATA.match(request.statement)
        if insert:
            return self._insert(request, insert)
        sql = request.statement.decode("utf-8", errors="surrogateescape")
        trailing = _TRAILING_FORMAT.search(sql)
        fmt = trailing.group(1) if trailing else request.default_format
        result = self._run(sql, fmt, request, checked=sql)
        body = result.bytes() or b""
        produces_rows = bool(body) or bool(_RESULT_STATEMENTS.match(sql))
        return Outcome(body, fmt if produces_rows else None, _summary(result, written=False))

    def _insert(self, request: Request, insert: re.Match[bytes]) -> Outcome:
        """Spool the data to a file and let the engine read it: chDB has no stdin to stream to."""
        target, settings, fmt = (g.decode() if g else "" for g in insert.groups())
        checked = f"{target}{settings} FORMAT {fmt}"  # what the client asked; FROM INFILE is ours
        with tempfile.NamedTemporaryFile(dir=self._spool, suffix=".data", delete=False) as spool:
            spool.write(memoryview(request.statement)[insert.end() :])
        try:
            sql = f"{target} FROM INFILE '{spool.name}'{settings} FORMAT {fmt}"
            result = self._run(sql, "TabSeparated", request, checked=checked, data_follows=True)
        finally:
            os.unlink(spool.name)
        return Outcome(b"", None, _summary(result, written=True))

    def _run(self, sql: str, fmt: str, request: Request, *, checked: str, data_follows: bool = False) -> Any:
        """Run ``sql`` once the guard has passed ``checked``, the client's own statement."""
        with self._lock:
            conn = chdb.connect(self.path)
            try:
                check_settings(request.settings)
                self._guard.check(conn, checked, request.params, data_follows=data_follows)
                if request.database:
                    conn.query(f"USE {_identifier(request.database)}")
                for name, value in request.settings.items():
                    conn.query(f"SET {_identifier(name)} = {sql_literal(value)}")
                if request.read_only:  # last, so no setting of the request's can lift it
                    conn.query("SET readonly = 1")
                return conn.query(sql, fmt, params=request.params)
            except QueryFailed:
                raise
            except Exception as exc:  # chDB raises a plain error carrying ClickHouse's text
                message = str(exc).strip()
                code = _ERROR_CODE.search(message)
                raise QueryFailed(message, int(code.group(1)) if code else _CODE_STD_EXCEPTION) from None
            finally:
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._anchor.close()


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _summary(result: Any, *, written: bool) -> dict[str, str]:
    rows, size = str(result.rows_read()), str(result.bytes_read())
    summary = {"read_rows": rows, "read_bytes": size, "written_rows": "0", "written_bytes": "0"}
    if written:
        summary |= {"written_rows": rows, "written_bytes": size}
    summary["elapsed_ns"] = str(int(result.elapsed() * 1e9))
    return summary


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body inflated, but never past ``limit`` bytes: a few KiB of zeros can inflate to GiBs.

    Each decompressor stops at ``max_length``, so one call with one byte over the limit either
    returns everything or tells that there was more.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "deflate"):
        decompressor = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    elif encoding == "lz4":
        decompressor = lz4.frame.LZ4FrameDecompressor()
    elif encoding == "zstd":
        decompressor = zstd.ZstdDecompressor()
    else:
        raise QueryFailed(
            f"Code: {_CODE_NOT_IMPLEMENTED}. DB::Exception: unsupported Content-Encoding {encoding!r} "
            "(use lz4, zstd, gzip or deflate)",
            _CODE_NOT_IMPLEMENTED,
        )
    try:
        inflated = decompressor.decompress(body, limit + 1)
    except Exception as exc:  # zlib.error, lz4's RuntimeError, zstd.ZstdError: a corrupt body
        raise QueryFailed(f"Code: 271. DB::Exception: cannot decompress the {encoding} body: {exc}", 271) from None
    if len(inflated) > limit:
        raise _too_large(limit)
    return inflated


def parse_request(query_string: str, headers: Mapping[str, str], body: bytes) -> Request:
    """Split URL parameters into transport fields, bind parameters and settings."""
    url_params = dict(parse_qsl(query_string, keep_blank_values=True))
    if url_params.get("decompress") == "1" or url_params.get("compress") == "1":
        raise QueryFailed(
            f"Code: {_CODE_NOT_IMPLEMENTED}. DB::Exception: ClickHouse-native block compression "
            "(compress/decompress=1) is not supported by the embedded warehouse; use HTTP compression",
            _CODE_NOT_IMPLEMENTED,
        )
    query = url_params.get("query", "").encode()
    statement = query + b"\n" + body if query and body else query or body
    return Request(
        statement=statement,
        database=url_params.get("database") or headers.get("X-ClickHouse-Database"),
        default_format=url_params.get("default_format") or headers.get("X-ClickHouse-Format") or "TabSeparated",
        settings={k: v for k, v in url_params.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")},
        params={k[len("param_") :]: v for k, v in url_params.items() if k.startswith("param_")},
        query_id=url_params.get("query_id") or str(uuid.uuid4()),
    )


IDLE_TIMEOUT_S = 120


def _handler(engine: Engine, policy: Policy) -> type[BaseHTTPRequestHandler]:
    limit = policy.max_body_bytes

    class ClickHouseHttpHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect pools connections
        # Headers and body go out in two writes; with Nagle on, the second waits for the client's
        # delayed ACK, adding ~40 ms to every request on a kept-alive connection.
        disable_nagle_algorithm = True
        # A client that opens a connection and then sends nothing (or a byte a minute) would hold
        # a thread for ever; idle pooled connections are closed after this and reopened by the client.
        timeout = IDLE_TIMEOUT_S

        def do_GET(self) -> None:
            self._handle(read_only=True)

        def do_POST(self) -> None:
            self._handle(read_only=False)

        def _handle(self, *, read_only: bool) -> None:
            """Who is asking is settled from the headers, before a byte of the body is read."""
            url = urlsplit(self.path)
            try:
                self._admit(url.query)
                if url.path in ("/ping", "/replicas_status"):
                    self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                    return
                body = b"" if read_only else self._read_body()
            except QueryFailed as exc:
                self.close_connection = True  # the unread body would be taken for the next request
                self._error(exc)
                return
            except (ValueError, OSError) as exc:
                self.close_connection = True
                self._error(QueryFailed(f"Code: 33. DB::Exception: cannot read the request body: {exc}", 33))
                return
            self._serve(url, body, read_only)

        def _admit(self, query_string: str) -> None:
            """Refuse a request for another host name (DNS rebinding), from a web page of another
            origin, or without the credential; ``/ping`` needs no credential, as on ClickHouse."""
            origin = self.headers.get("Origin")
            if not host_allowed(self.headers.get("Host"), policy.hosts) or (
                origin is not None and not host_allowed(urlsplit(origin).netloc, policy.hosts)
            ):
                raise QueryFailed("Code: 497. DB::Exception: the request names another host. (ACCESS_DENIED)", 497)
            if policy.credential is None or urlsplit(self.path).path in ("/ping", "/replicas_status"):
                return
            user, password = presented(self.headers, dict(parse_qsl(query_string, keep_blank_values=True)))
            if not policy.credential.admits(user, password):
                raise QueryFailed(
                    f"Code: {_CODE_AUTHENTICATION_FAILED}. DB::Exception: {user or 'default'}: Authentication failed: "
                    "password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                    _CODE_AUTHENTICATION_FAILED,
                )

        def _read_body(self) -> bytes:
            """At most ``limit`` bytes, refused from the declared sizes before they are read."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks, total = [], 0
                while size := int(self.rfile.readline(1024).split(b";")[0].strip(), 16):
                    total += size
                    if total > limit:
                        raise _too_large(limit)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(1024)
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            if length > limit:
                raise _too_large(limit)
            return self.rfile.read(length)

        def _serve(self, url: Any, body: bytes, read_only: bool) -> None:
            if url.path == "/" and not url.query and not body:
                self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if url.path != "/":
                self._error(QueryFailed(f"Code: 48. DB::Exception: no handler for {url.path}", 48), status=404)
                return
            try:
                inflated = _decompress(body, self.headers.get("Content-Encoding", ""), limit)
                request = parse_request(url.query, self.headers, inflated)
                request.read_only = read_only
                started = time.perf_counter()
                outcome = engine.execute(request)
            except QueryFailed as exc:
                self._error(exc)
                return
            except Exception as exc:  # a server bug must not take the warehouse down
                log.exception("unexpected failure serving a query")
                self._error(QueryFailed(f"Code: {_CODE_STD_EXCEPTION}. DB::Exception: {exc}", _CODE_STD_EXCEPTION))
                return
            MESSAGES_IN.labels(STAGE, "http").inc()
            log.debug("query %s took %.1f ms", request.query_id, (time.perf_counter() - started) * 1000)
            headers = {
                "Content-Type": _CONTENT_TYPES.get(outcome.fmt or "", "application/octet-stream"),
                "X-ClickHouse-Query-Id": request.query_id,
                "X-ClickHouse-Timezone": engine.timezone,
                "X-ClickHouse-Server-Display-Name": "gantry-warehouse",
                "X-ClickHouse-Summary": json.dumps(outcome.summary),
            }
            if outcome.fmt:
                headers["X-ClickHouse-Format"] = outcome.fmt
            self._reply(200, outcome.body, headers)

        def _error(self, exc: QueryFailed, status: int | None = None) -> None:
            ERRORS.labels(STAGE, str(exc.code)).inc()
            log.info("query failed: %s", exc)
            text = str(exc)
            if not text.startswith("Code:"):
                text = f"Code: {exc.code}. DB::Exception: {text}"
            self._reply(
                status or _STATUS.get(exc.code, 500),
                (text + "\n").encode(),
                {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(exc.code)},
            )

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    return ClickHouseHttpHandler


class WarehouseServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start(data_dir: Path, port: int, host: str = "127.0.0.1", policy: Policy = Policy()) -> tuple[WarehouseServer, Engine]:
    """Open the engine and start answering in a background thread; port 0 picks a free one."""
    engine = Engine(data_dir)
    server = WarehouseServer((host, port), _handler(engine, policy))
    threading.Thread(target=server.serve_forever, name="warehouse-http", daemon=True).start()
    return server, engine


def serve(data_dir: Path, port: int, health_port: int, host: str = "127.0.0.1", policy: Policy = Policy()) -> None:
    """Run until SIGTERM/SIGINT; ``/healthz`` turns 200 once queries are being answered."""
    server, engine = start(data_dir, port, host, policy)
    health = serve_health(health_port, ready=lambda: True)
    log.info(
        "warehouse (chDB %s, %s) serving ClickHouse HTTP on %s:%d (%s), health on :%d",
        engine.version, data_dir, host, server.server_port,
        f"user {policy.credential.user}" if policy.credential else "no credential: anyone on this machine",
        health.server_port,
    )  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    health.shutdown()
    engine.close()
