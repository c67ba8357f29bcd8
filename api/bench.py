"""``gantry bench search``: how fast a search by plate answers over millions of reads; and the
live page's client for ``gantry bench alerts`` (:class:`LiveClient`).

A fresh embedded warehouse (``warehouse serve`` on a temporary directory, reached over HTTP as in
the embedded stack; or an existing one with ``--dsn``) is migrated and filled with N reads made
by the warehouse itself (``INSERT … SELECT FROM numbers()``, in chunks): 200 cameras, one read
every 250 ms for as long as N takes (10 million: 29 days, inside the default 90-day look-back),
each plate read about five times at random times. Then two things are timed, each a few hundred
times with plates picked at random from those stored (and a few never read):

- ``warehouse``: the API's own query (:func:`api.queries.reads_query`, exact plate, the whole
  look-back, first page of 100) through clickhouse-connect;
- ``wildcard_warehouse``: the same query for patterns like ``AB?12*`` (a tenth as many), which
  no index helps: they scan the look-back window;
- ``api``: ``GET /v1/reads?plate=…`` as an operator through the FastAPI app in process, which adds
  the token check, the presentation and the audit row every operator search writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import socket
import statistics
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta

from rich.progress import Progress

from api import queries
from gantry.config import GantryConfig, RetentionConfig
from warehouse.bench import embedded_warehouse
from warehouse.client import connect, parse_dsn
from warehouse.migrations import migrate

CHUNK = 1_000_000
READ_EVERY_MS = 250
DISTINCT_DIVISOR = 5  # each plate about five times
# A UK-style plate from a hash: two letters, two digits, three letters.
_PLATE = ("concat(char(65 + h % 26), char(65 + intDiv(h, 26) % 26), leftPad(toString(intDiv(h, 676) % 100), 2, '0'), "
          "char(65 + intDiv(h, 67600) % 26), char(65 + intDiv(h, 1757600) % 26), char(65 + intDiv(h, 45697600) % 26))")


def _fill(client, reads: int, quiet: bool) -> float:
    plates = max(1, reads // DISTINCT_DIVISOR)
    end_ms = int(datetime.now(UTC).timestamp() * 1000)
    sql = (
        "INSERT INTO plate_reads (v, read_id, camera_id, ts, plate, confidence, region, direction, bbox, image_ref) "
        "SELECT 1, concat('bench-', toString(number)), concat('cam-', leftPad(toString(number % 200), 3, '0')), "
        "fromUnixTimestamp64Milli(toInt64({end_ms:Int64} - ({reads:UInt64} - number) * {every:UInt32})), "
        f"{_PLATE}, 0.8 + (number % 20) / 100, 'uk', 'in', (10, 20, 120, 30), "
        "concat('file:///bench/', toString(number), '.jpg') "
        "FROM (SELECT number, cityHash64(number % {plates:UInt64}) AS h FROM numbers({start:UInt64}, {count:UInt64}))"
    )
    started = time.perf_counter()
    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("loading reads", total=reads)
        for start in range(0, reads, CHUNK):
            count = min(CHUNK, reads - start)
            client.command(sql, parameters={"end_ms": end_ms, "reads": reads, "every": READ_EVERY_MS,
                                            "plates": plates, "start": start, "count": count})  # fmt: skip
            progress.advance(task, count)
    return time.perf_counter() - started


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
            "max_ms": round(ordered[-1], 2), "mean_ms": round(statistics.fmean(ordered), 2)}  # fmt: skip


def _api_client(dsn: str, database: str):
    """The API in process, with one operator token and a throwaway pseudonym key."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice about httpx, irrelevant to a benchmark
        from fastapi.testclient import TestClient

    from pydantic import SecretStr

    from api.app import create_app
    from api.auth import Grant, TokenBook

    token = uuid.uuid4().hex
    os.environ.setdefault("GANTRY_BENCH_PSEUDONYM_KEY", uuid.uuid4().hex)
    config = GantryConfig(warehouse={"dsn": dsn, "database": database},
                          privacy={"pseudonym_key_env": "GANTRY_BENCH_PSEUDONYM_KEY"})  # fmt: skip
    book = TokenBook({"bench": Grant("bench", "operator", SecretStr(token))}, config.api)
    return TestClient(create_app(config, book=book, bootstrap=lambda: ""), headers={"Authorization": f"Bearer {token}"})


class LiveClient:
    """A control room's live page as far as timing goes, for ``gantry bench alerts``: the API
    served over HTTP (uvicorn in a thread, as ``gantry api serve`` runs it) and one operator's
    client on ``/v1/hits/stream``, noting when the first hit of each read arrives. The operator's
    watch is audited, so the API gets an embedded warehouse of its own (chDB in a temporary
    directory) for the audit row."""

    def __init__(self, bootstrap: str, timeout_s: float = 60) -> None:
        import threading

        import uvicorn
        from pydantic import SecretStr

        from api.app import create_app
        from api.auth import Grant, TokenBook
        from gantry.broker import free_port

        self.arrivals: dict[str, float] = {}
        self._ready = threading.Event()
        self._answer = None
        self._dir = tempfile.TemporaryDirectory(prefix="gantry-bench-alerts-")
        dsn, database = f"chdb://{self._dir.name}/warehouse", "bench_alerts"
        client = connect(dsn, database)
        migrate(client, RetentionConfig())
        token = uuid.uuid4().hex
        os.environ.setdefault("GANTRY_BENCH_PSEUDONYM_KEY", uuid.uuid4().hex)
        config = GantryConfig(data_dir=self._dir.name, warehouse={"dsn": dsn, "database": database},
                              privacy={"pseudonym_key_env": "GANTRY_BENCH_PSEUDONYM_KEY"})  # fmt: skip
        book = TokenBook({"control-room": Grant("control-room", "operator", SecretStr(token))}, config.api)
        app = create_app(config, client_factory=lambda: client, book=book, bootstrap=lambda: bootstrap)
        port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                     timeout_graceful_shutdown=3))  # fmt: skip
        self._server.install_signal_handlers = lambda: None  # not the main thread
        threading.Thread(target=self._server.run, daemon=True).start()
        self._reader = threading.Thread(target=self._listen, args=(f"http://127.0.0.1:{port}", token), daemon=True)
        deadline = time.monotonic() + timeout_s
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self._reader.start()
        if not self._ready.wait(max(0.0, deadline - time.monotonic())):
            self.close()
            raise RuntimeError(f"the API's hit stream was not ready within {timeout_s:.0f} s")

    def _listen(self, url: str, token: str) -> None:
        import httpx

        event = ""
        try:
            with httpx.stream("GET", f"{url}/v1/hits/stream", params={"reason": "gantry bench alerts"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=None) as answer:
                self._answer = answer
                for line in answer.iter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "ready":
                        self._ready.set()
                    elif line.startswith("data: ") and event == "hit":
                        self.arrivals.setdefault(json.loads(line.removeprefix("data: "))["read_id"], time.monotonic())
        except (httpx.HTTPError, httpx.StreamClosed):
            return  # closed: the run is over

    def close(self) -> None:
        """Hang up first, so that the stream ends as when a browser leaves; then stop the server."""
        if self._answer is not None:
            # shutdown, not close: close would wait for the reader's blocked read to return
            self._answer.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        self._reader.join(5)
        self._server.should_exit = True
        self._dir.cleanup()


def run_bench(reads: int, searches: int, dsn: str | None, quiet: bool = False) -> dict:
    with contextlib.ExitStack() as stack:
        target = dsn or stack.enter_context(embedded_warehouse())
        database = f"bench_search_{uuid.uuid4().hex[:8]}"
        client = connect(target, database)
        migrate(client, RetentionConfig())
        try:
            load_s = _fill(client, reads, quiet)
            stored = int(client.command("SELECT count() FROM plate_reads"))
            if stored != reads:
                raise RuntimeError(f"benchmark stored {stored} reads of {reads}")
            parts = int(client.command("SELECT count() FROM system.parts WHERE database = {db:String} "
                                       "AND table = 'plate_reads' AND active", parameters={"db": database}))
            rng = random.Random(17)
            known = [r[0] for r in client.query("SELECT plate FROM plate_reads WHERE cityHash64(read_id) % 1000 = 7 "
                                                "LIMIT {n:UInt32}", parameters={"n": searches}).result_rows]
            plates = [rng.choice(known) for _ in range(searches - searches // 10)] + ["ZZ00ZZZ"] * (searches // 10)
            rng.shuffle(plates)
            since_ms = queries.to_ms(datetime.now(UTC) - timedelta(days=90))
            warehouse_ms, found = [], 0
            for plate in plates:
                q = queries.reads_query(queries.Filter(since_ms=since_ms, plate=plate, limit=100))
                t0 = time.perf_counter()
                found += len(client.query(q.sql, parameters=q.parameters).result_rows)
                warehouse_ms.append((time.perf_counter() - t0) * 1000)
            wildcard_ms = []
            for plate in plates[: max(10, searches // 10)]:
                pattern = f"{plate[:2]}?{plate[3:5]}*"  # AB?12*: a partial plate from a witness
                q = queries.reads_query(queries.Filter(since_ms=since_ms, plate=pattern, match="wildcard", limit=100))
                t0 = time.perf_counter()
                client.query(q.sql, parameters=q.parameters)
                wildcard_ms.append((time.perf_counter() - t0) * 1000)
            api = _api_client(target, database)
            api_ms = []
            for plate in plates:
                t0 = time.perf_counter()
                answer = api.get("/v1/reads", params={"plate": plate, "reason": "benchmark"})
                api_ms.append((time.perf_counter() - t0) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"the API answered {answer.status_code}: {answer.text}")
        finally:
            client.command(f"DROP DATABASE IF EXISTS `{database}`", use_database=False)
    return {
        "reads": reads,
        "distinct_plates": max(1, reads // DISTINCT_DIVISOR),
        "searches": searches,
        "mean_reads_found": round(found / len(plates), 2),
        "load_s": round(load_s, 1),
        "plate_reads_parts": parts,
        "warehouse": _percentiles(warehouse_ms),
        "api": _percentiles(api_ms),
        "wildcard_warehouse": _percentiles(wildcard_ms),
        "target": "given warehouse " + parse_dsn(target).redacted() if dsn else "embedded warehouse over HTTP",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
