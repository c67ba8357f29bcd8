"""Commands of the `ingest` stage: push files, run camera readers, serve edge cameras, import reads."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gantry import topics
from gantry.broker import BenchStorage
from gantry.cli_support import config_of, console, fail, setup_logging
from gantry.errors import GantryError
from gantry.observability import serve_health
from gantry.runtime import endpoints
from ingest.publish import Publisher, check_camera
from ingest.sources import SourceError, frames_of, open_source

app = typer.Typer(help="Bring camera frames and edge-camera plate reads into Gantry.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Bring camera frames and edge-camera plate reads into Gantry."""


def parse_start(text: str | None) -> datetime | None:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--start: {text!r} is not an ISO 8601 time (like 2026-11-21T08:00:00Z)")
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@app.command("file")
def ingest_file(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="an image, a folder of images, or a video file"),
    camera: str = typer.Option(..., "--camera", help="the camera id the frames belong to"),
    fps: float | None = typer.Option(
        None, "--fps", min=0.001, help="video sampling rate [default: ingest.fps]"
    ),
    start: str | None = typer.Option(None, "--start", help="ISO time of the first frame"),
    motion: bool = typer.Option(False, "--motion/--no-motion", help="skip video frames while nothing moves"),
) -> None:
    """Push one image, image folder or video file to topic `frames` and wait for the broker's acks."""
    setup_logging()
    config = config_of(ctx)
    settings = config.ingest
    try:
        check_camera(config, camera)
        source = open_source(
            path,
            fps=fps or settings.fps,
            start=parse_start(start),
            motion=settings.motion if motion else None,
        )
        publisher = Publisher(endpoints(config).bootstrap_servers)
    except (GantryError, SourceError) as exc:
        fail(str(exc))
    try:
        with _progress() as progress:
            task = progress.add_task(f"{path.name} → frames", total=source.expected or None)
            for frame in frames_of(source, camera, settings):
                publisher.send_frame(frame)
                progress.advance(task)
            acks, failed = publisher.flush()
    except SourceError as exc:
        fail(str(exc))
    finally:
        publisher.close()
    if failed:
        fail(f"{failed} of {acks.total() + failed} frames were not acknowledged by the broker", code=1)
    typer.echo(f"sent {acks[topics.FRAMES]} frames from {path} (camera {camera})")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="[default: ingest.http_host]"),
    port: int | None = typer.Option(None, "--port", help="[default: ingest.http_port]"),
    health_port: int = typer.Option(
        0, "--health-port", envvar="GANTRY_HEALTH_PORT", help="0 picks a free port"
    ),
) -> None:
    """Accept plate reads pushed by edge ANPR cameras over HTTP (JSON, Hikvision ISAPI, query form)."""
    from ingest.server import serve

    setup_logging()
    config = config_of(ctx)
    try:
        bootstrap = endpoints(config).bootstrap_servers
        serve(
            config,
            bootstrap,
            host=host or config.ingest.http_host,
            port=config.ingest.http_port if port is None else port,
            health_port=health_port,
        )
    except GantryError as exc:
        fail(str(exc))


@app.command("reads")
def import_reads_command(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSON lines in Gantry's edge-read schema"
    ),
    camera: str | None = typer.Option(None, "--camera", help="camera of the lines that name none"),
    strict: bool = typer.Option(False, "--strict", help="send nothing if any line is bad"),
) -> None:
    """Batch-import plate reads; a bad line is reported by number and the rest still go in."""
    from ingest.reads import find_bad_lines, import_reads
    from ingest.snapshots import SnapshotStore, store_url

    setup_logging()
    config = config_of(ctx)
    if strict and (bad := find_bad_lines(path, config, camera)):
        _report_bad_lines(path, bad)
        fail(f"{len(bad)} bad lines in {path}; nothing was sent (--strict)", code=1)
    try:
        publisher = Publisher(endpoints(config).bootstrap_servers)
        store = SnapshotStore(store_url(config))
    except GantryError as exc:
        fail(str(exc))
    try:
        with _progress() as progress, path.open("rb") as counted:
            task = progress.add_task(f"{path.name} → plate_reads", total=sum(1 for _ in counted))
            report = import_reads(
                path, config, publisher, store, camera, on_line=lambda n: progress.update(task, completed=n)
            )
    finally:
        publisher.close()
    _report_bad_lines(path, report.bad or [])
    typer.echo(f"imported {report.sent} reads from {path}; {len(report.bad or [])} bad lines")
    if report.failed:
        fail(f"{report.failed} reads were not acknowledged by the broker", code=1)
    if report.bad:
        raise typer.Exit(1)


def _report_bad_lines(path: Path, bad: list) -> None:
    for line in bad[:50]:
        console.print(f"[yellow]{path}:{line.number}:[/] {line.reason}", highlight=False, soft_wrap=True)
    if len(bad) > 50:
        console.print(f"... and {len(bad) - 50} more bad lines (all are on the dead-letter topic)")


@app.command("prune-snapshots")
def prune_snapshots_command(ctx: typer.Context) -> None:
    """Delete the pictures no warehouse row refers to any more: a read's go with the read
    (warehouse.retention_days.plate_reads), the evidence of a hit or a charge stays as long as it."""
    from clickhouse_connect.driver.exceptions import Error as WarehouseError

    from ingest.snapshots import SnapshotStore, store_url
    from warehouse.client import open_warehouse
    from warehouse.evidence import evidence_of_day, longest_kept_days

    config = config_of(ctx)
    retention = config.warehouse.retention_days
    try:
        store = SnapshotStore(store_url(config))
        client = open_warehouse(config)
        pruned = store.prune(datetime.now(UTC).date(), retention.plate_reads, longest_kept_days(retention),
                             lambda day: evidence_of_day(client, retention, day))
    except (GantryError, OSError) as exc:
        fail(f"prune-snapshots: {exc}")
    except WarehouseError as exc:
        fail(f"prune-snapshots stopped: the warehouse, which says which pictures rows refer to, failed: {exc}")
    typer.echo(
        f"deleted the pictures of {len(pruned.days_deleted)} days no row refers to any more"
        + (f" ({', '.join(pruned.days_deleted)})" if pruned.days_deleted else "")
        + f"; {pruned.pictures_deleted} pictures of reads older than {retention.plate_reads} days from days "
        f"that keep other pictures; "
        f"kept {pruned.pictures_kept} as the evidence of hits and charges"
    )


@app.command("run")
def run_command(
    ctx: typer.Context,
    health_port: int = typer.Option(
        0, "--health-port", envvar="GANTRY_HEALTH_PORT", help="0 picks a free port"
    ),
) -> None:
    """Read the video of every camera in ingest.streams and publish sampled, motion-gated frames."""
    from ingest.readers import start_readers

    setup_logging()
    config = config_of(ctx)
    streams = config.ingest.streams
    if not streams:
        fail("no cameras to read: list them under ingest.streams (camera id -> url, fps)")
    try:
        for camera in streams:
            check_camera(config, camera)
        publisher = Publisher(endpoints(config).bootstrap_servers)
    except GantryError as exc:
        fail(str(exc))
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    readers = start_readers(streams, config.ingest, publisher.fire_frame, stop)
    health = serve_health(health_port, ready=lambda: any(r.is_alive() for r in readers))
    console.print(f"reading {len(readers)} cameras; health and metrics on port {health.server_port}")
    try:
        while not stop.wait(1.0) and any(r.is_alive() for r in readers):
            pass
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=5)
        publisher.close()
        health.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def bench_ingest(
    events: int = typer.Option(20_000, "--events", min=100, help="reads posted as fast as possible"),
    concurrency: int = typer.Option(64, "--concurrency", min=1, help="HTTP connections"),
    rate: float = typer.Option(500, "--rate", min=1, help="reads/s of the latency run"),
    rate_seconds: float = typer.Option(10, "--rate-seconds", min=1, help="length of the latency run"),
    storage: BenchStorage = typer.Option(BenchStorage.disk, help="the private broker's storage (disk: as `gantry up` runs it)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object as the last line"),
) -> None:
    """Accepted reads/s and acknowledgement latency of the edge endpoint; frames/s of a video reader,
    on a private broker started for the run."""
    from ingest import bench

    if not as_json:
        setup_logging()
        console.print(f"benchmarking the edge endpoint on a private {storage} broker ...")
    figures = bench.run(storage, events, concurrency, rate, rate_seconds)
    if as_json:
        print(json.dumps(figures))
        return
    table = bench.load_table(f"gantry bench ingest ({storage} broker)", figures, counted="events",
                             per_s="accepted/s", latency="ack_")
    console.print(table)
    typer.echo(
        f"video reader (1280x720, every frame re-encoded and sent): {figures['reader_frames']} frames "
        f"at {figures['reader_frames_per_s']:.1f} frames/s"
    )
