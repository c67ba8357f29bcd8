"""Commands of the stream_jobs stage: ``gantry jobs``, ``gantry hotlist``, ``gantry simulate``
and ``gantry bench jobs``."""

from __future__ import annotations

import logging

import faust
import typer

from gantry.cli_support import config_of, fail, setup_logging
from gantry.errors import GantryError
from gantry.kafka import ensure_topics
from gantry.observability import serve_health
from gantry.runtime import endpoints
from stream_jobs.app import create_app, ready
from stream_jobs.hotlist.commands import hotlist_app

__all__ = ["app", "hotlist_app"]

app = typer.Typer(help="Stream jobs: hotlist hits, journey times, congestion charges.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command()
def worker(
    ctx: typer.Context,
    health_port: int = typer.Option(0, envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics; 0 = a free port"),
    worker_index: int = typer.Option(0, help="which worker of this machine; names its state directory"),
) -> None:
    """Run one Faust worker; start more (any machine, same config) to split the partitions."""
    setup_logging()
    config = config_of(ctx)
    try:
        bootstrap = endpoints(config).bootstrap_servers
        ensure_topics(config, bootstrap)
        jobs = create_app(config, bootstrap, worker_index=worker_index)
    except GantryError as exc:
        fail(str(exc))
    server = serve_health(health_port, ready=lambda: ready(jobs))
    log.info("stream jobs worker %d: health on port %d", worker_index, server.server_port)
    faust.Worker(jobs.app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
