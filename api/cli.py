"""``gantry api serve``, ``gantry search``, ``gantry bench search`` and ``gantry bench alerts``.

``gantry search`` asks the running API (so the caller's token, role, look-back and audit apply
as for any client) and prints a rich table, or the API's JSON with ``--json``. The API is found
at ``--api``, else where the embedded stack recorded it, else ``api.host:api.port``; the token
comes from ``--token`` or ``$GANTRY_API_TOKEN``.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import typer
from rich.console import Console
from rich.table import Table

from gantry.cli_support import config_of, console, fail, setup_logging
from gantry.config import GantryConfig
from gantry.errors import GantryError
from gantry.runtime import read_stack

app = typer.Typer(help="The search and live-alert HTTP API.", no_args_is_help=True)


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="[default: api.host]"),
    port: int | None = typer.Option(None, "--port", help="[default: api.port]"),
    health_port: int = typer.Option(0, "--health-port", envvar="GANTRY_HEALTH_PORT", help="0 picks a free port"),
) -> None:
    """Serve the search API, its OpenAPI docs (/docs), the hit stream and the live page (/live)."""
    import uvicorn

    from api.app import create_app
    from gantry.observability import serve_health

    setup_logging()
    config = config_of(ctx)
    try:
        application = create_app(config)
    except GantryError as exc:
        fail(str(exc))
    if not len(application.state.api.book):
        console.print(f"[bold yellow]warning:[/] no API tokens (${config.api.tokens_env}, api.tokens_file): "
                      "every request will be refused")
    serve_health(health_port)
    uvicorn.run(application, host=host or config.api.host, port=config.api.port if port is None else port,
                log_level="warning", timeout_graceful_shutdown=3)


def api_url(config: GantryConfig) -> str:
    port = read_stack(config).get("processes", {}).get("api", {}).get("port") or config.api.port
    host = "127.0.0.1" if config.api.host in ("0.0.0.0", "::") else config.api.host
    return f"http://{host}:{port}"


def search(
    ctx: typer.Context,
    plate: str = typer.Argument(..., help="a plate, or a pattern with --match wildcard (AB?12*)"),
    match: str = typer.Option("exact", "--match", "-m", help="exact, confusable or wildcard"),
    camera: list[str] = typer.Option([], "--camera", help="repeat for several cameras"),
    since: datetime | None = typer.Option(None, "--from", help="ISO time (UTC unless it says)"),
    until: datetime | None = typer.Option(None, "--to", help="ISO time, exclusive"),
    limit: int = typer.Option(50, "--limit", min=1),
    reason: str = typer.Option("", "--reason", help="why you search (required for operators; audited)"),
    token: str | None = typer.Option(None, "--token", envvar="GANTRY_API_TOKEN", help="API bearer token"),
    api: str | None = typer.Option(None, "--api", help="API address [default: the stack's, or api.host:port]"),
    as_json: bool = typer.Option(False, "--json", help="print the API's JSON answer"),
) -> None:
    """Search plate reads through the API: a table of the newest reads, or JSON."""
    config = config_of(ctx)
    if not token:
        fail("no API token: pass --token or set $GANTRY_API_TOKEN")
    if "?" in plate or "*" in plate:
        match = "wildcard"
    params: list[tuple[str, str]] = [("plate", plate), ("match", match), ("limit", str(limit))]
    params += [("camera", c) for c in camera]
    params += [(k, v.isoformat()) for k, v in (("from", since), ("to", until)) if v is not None]
    if reason:
        params.append(("reason", reason))
    base = api or api_url(config)
    try:
        answer = httpx.get(f"{base}/v1/reads", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        fail(f"the API at {base} does not answer ({exc}); is `gantry up` (or `gantry api serve`) running?")
    if answer.status_code != 200:
        try:
            detail = answer.json().get("detail")
        except ValueError:
            detail = answer.text
        fail(f"{answer.status_code}: {detail}")
    body = answer.json()
    if as_json:
        print(json.dumps(body, indent=2))
        return
    table = Table(title=f"reads of {plate} ({match})")
    for column in ("time (UTC)", "plate", "match", "camera", "confidence", "picture", "read id"):
        table.add_column(column)
    for read in body["items"]:
        table.add_row(read["ts"].replace("T", " ")[:23], read.get("plate") or read.get("plate_pseudonym", ""),
                      read.get("match", ""), read["camera"].get("name") or read["camera"]["id"],
                      f"{read['confidence']:.2f}", f"{base}{read['image_url']}" if read.get("image_url") else "-",
                      read["read_id"])  # fmt: skip
    Console().print(table)
    if body.get("next_cursor"):
        console.print(f"more reads: narrow the search, or page with cursor={body['next_cursor']}")


def bench_search(
    ctx: typer.Context,
    reads: int = typer.Option(10_000_000, "--reads", min=1000, help="reads in the benchmark warehouse"),
    queries: int = typer.Option(200, "--queries", min=10, help="searches timed"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
    dsn: str | None = typer.Option(None, "--dsn", help="an existing warehouse; default: a fresh embedded one"),
) -> None:
    """p50/p95/p99 latency of search by plate over N reads in the embedded warehouse."""
    from api.bench import run_bench

    config_of(ctx)  # a broken configuration is reported before minutes of loading

    result = run_bench(reads, queries, dsn, quiet=as_json)
    if as_json:
        print(json.dumps(result))
    else:
        console.print_json(json.dumps(result))


def bench_alerts(
    reads: int = typer.Option(10_000, "--reads", help="about this many reads (the simulator's city)"),
    rate: float = typer.Option(1_000, "--rate", min=1, help="reads per second offered"),
    workers: int = typer.Option(2, "--workers", help="stream-job worker processes"),
    webhook: bool = typer.Option(True, "--webhook/--no-webhook", help="also time a webhook subscriber"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """p50/p99 from a read entering plate_reads to its hit reaching a live-page client (the API's
    Server-Sent Events over HTTP), beside the hit topic and a webhook, on a private broker."""
    from api.bench import LiveClient
    from stream_jobs.bench import run_bench

    result = run_bench(reads=reads, rate=rate, workers=workers, hotlist_size=0, webhook=webhook,
                       progress=not as_json, listeners={"sse": LiveClient})
    if as_json:
        print(json.dumps(result))
    else:
        console.print_json(json.dumps(result))

