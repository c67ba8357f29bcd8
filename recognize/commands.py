"""``gantry recognize pool`` and ``gantry bench recognize``."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time

import typer

from gantry.cli_support import config_of

log = logging.getLogger(__name__)
pool_app = typer.Typer(help="The recognizer pool (Ray actors reading plates from frames).", no_args_is_help=True)


@pool_app.command("pool")
def pool_command(
    ctx: typer.Context,
    health_port: int = typer.Option(0, envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics port"),
) -> None:
    """Consume frames, read plates on Ray actors, produce plate reads (runs until stopped)."""
    from recognize.driver import run

    config = config_of(ctx)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    run(config, health_port, stop)
    log.info("recognizer pool stopped after %.0f s", time.monotonic() - started)


def bench_pool(
    ctx: typer.Context,
    actors: str = typer.Option("1,2", help="actor counts to compare, comma-separated"),
    frames: int = typer.Option(48, min=1, help="synthetic frames per run"),
    preset: str | None = typer.Option(None, help="fast | accurate (default: recognize.preset of the configuration)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object as the last line"),
) -> None:
    """Frames/s through the Ray pool for each actor count (models loaded before the clock starts)."""
    from recognize.bench import run_bench

    settings = config_of(ctx).recognize
    if preset is not None:
        settings = settings.model_copy(update={"preset": preset})
    results = run_bench([int(a) for a in actors.split(",")], frames, settings, progress=not as_json)
    if as_json:
        print(json.dumps(results))
