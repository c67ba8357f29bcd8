"""The ``gantry`` command: the embedded stack, the demo, and each stage's commands.

This module is the composition root: it is the one place that knows every stage, and it only
mounts their command groups; the stages themselves never import one another.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from api.cli import app as api_app
from api.cli import bench_alerts, bench_search, search
from gantry import stack
from gantry.cli_support import config_of, console, fail, setup_logging
from gantry.errors import GantryError
from ingest.cli import app as ingest_app
from ingest.cli import bench_ingest
from recognize.cli import eval_app
from recognize.commands import bench_pool, pool_app
from sites.cli import bench_gate, parking_app
from stream_jobs.charges.commands import concessions_app, vehicles_app
from stream_jobs.cli import app as jobs_app
from stream_jobs.cli import bench_jobs, hotlist_app, simulate
from warehouse.cli import app as warehouse_app
from warehouse.cli import bench_sink, export_app, privacy_app
from warehouse.grafana.cli import dashboards_app, report

app = typer.Typer(
    help="Gantry: city-scale ANPR streaming analytics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Benchmarks (commands, not tests).", no_args_is_help=True)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", envvar="GANTRY_CONFIG", help="gantry.yaml (default: ./gantry.yaml if present)"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    setup_logging(verbose)
    ctx.ensure_object(dict)
    if config is not None:
        # The processes this command starts read the same file.
        os.environ["GANTRY_CONFIG"] = str(config.resolve())


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the embedded stack (broker, warehouse, Ray, stream jobs, sink, recognizer pool)."""
    try:
        state = stack.up(config_of(ctx))
    except GantryError as exc:
        fail(str(exc))
    stack.print_status(state)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop every process the embedded stack started, in reverse order."""
    stopped = stack.down(config_of(ctx))
    console.print(f"stopped {len(stopped)} process(es): {', '.join(stopped) or 'none running'}")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show what runs, where, and whether each process answers its health check."""
    state = stack.status(config_of(ctx))
    stack.print_status(state)
    if not state.processes:
        raise typer.Exit(1)


@app.command()
def demo(
    ctx: typer.Context,
    cameras: int = typer.Option(3, min=1, max=20, help="synthetic cameras"),
    vehicles: int = typer.Option(12, min=1, max=200, help="synthetic vehicles"),
    seed: int = typer.Option(7, help="random seed of the synthetic city"),
    keep: bool = typer.Option(False, help="leave the stack running afterwards"),
) -> None:
    """Run the whole pipeline on a synthetic city and print what came out."""
    from gantry.demo import run_demo

    try:
        ok = run_demo(config_of(ctx), cameras=cameras, vehicles=vehicles, seed=seed, keep=keep)
    except GantryError as exc:
        fail(str(exc))
    raise typer.Exit(0 if ok else 1)


@app.command("object-store", hidden=True)
def object_store(
    root: Path = typer.Option(..., "--root", help="directory that holds the objects"),
    port: int = typer.Option(..., "--port", help="port on 127.0.0.1"),
    sweep_every_s: float = typer.Option(60.0, "--sweep-every-s", envvar="GANTRY_RETENTION_SWEEP_S", min=0.1,
                                        help="how often batches past their topic's retention.ms are removed"),
) -> None:
    """Serve the embedded broker's durable storage (started by `gantry up`, not by hand)."""
    from gantry.broker import BUCKET
    from gantry.objectstore import serve

    serve(root, port, buckets=(BUCKET,), sweep_every_s=sweep_every_s)


app.add_typer(ingest_app, name="ingest")
app.add_typer(pool_app, name="recognize")
app.add_typer(jobs_app, name="jobs")
app.add_typer(hotlist_app, name="hotlist")
app.add_typer(vehicles_app, name="vehicles")
app.add_typer(concessions_app, name="concessions")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(export_app, name="export")
app.add_typer(privacy_app, name="privacy")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(parking_app, name="parking")
app.add_typer(api_app, name="api")
app.command("search")(search)
app.command("simulate")(simulate)
app.command("report")(report)
bench_app.command("jobs")(bench_jobs)
bench_app.command("sink")(bench_sink)
bench_app.command("ingest")(bench_ingest)
bench_app.command("recognize")(bench_pool)
bench_app.command("search")(bench_search)
bench_app.command("gate")(bench_gate)
bench_app.command("alerts")(bench_alerts)


def main() -> None:
    app()
