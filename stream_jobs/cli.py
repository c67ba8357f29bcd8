"""Commands of the stream_jobs stage: ``gantry jobs``, ``gantry hotlist``, ``gantry simulate``
and ``gantry bench jobs``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from rich.console import Console

from gantry import topics
from gantry.broker import BenchStorage
from gantry.cli_support import config_of, fail, setup_logging
from gantry.errors import GantryError
from gantry.events import encode
from gantry.kafka import producer
from stream_jobs.bench import run_bench
from stream_jobs.hotlist import store
from stream_jobs.hotlist.commands import hotlist_app
from stream_jobs.register_commands import broker_with_topics
from stream_jobs.simulator import Noise
from stream_jobs.simulator import simulate as run_simulation
from stream_jobs.worker import run_worker

__all__ = ["app", "bench_jobs", "hotlist_app", "simulate"]

app = typer.Typer(help="Stream jobs: hotlist hits, journey times, congestion charges.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def worker(
    ctx: typer.Context,
    health_port: int = typer.Option(0, envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics; 0 = a free port"),
    worker_index: int = typer.Option(0, help="which worker of this machine, for its log lines"),
) -> None:
    """Run one stream-jobs worker; start more (any machine, same config) to split the partitions."""
    setup_logging()
    config = config_of(ctx)
    try:
        run_worker(config, worker_index, health_port)
    except GantryError as exc:
        fail(str(exc))


def simulate(
    ctx: typer.Context,
    cameras: int = typer.Option(8, min=2, help="cameras along the simulated road"),
    vehicles: int = typer.Option(500, min=1),
    hours: float = typer.Option(3, min=0.1),
    seed: int = typer.Option(1),
    out: Path = typer.Option(Path("simulation"), help="folder for reads.jsonl, hotlist.csv, city.yaml, expected.json"),
    kafka: bool = typer.Option(False, "--kafka", help="also send the hotlist and reads to the broker"),
    duplicates: float = typer.Option(0.0, help="share of reads delivered twice"),
    extra_reads: float = typer.Option(0.0, help="share of passages read a second time"),
    early_second_looks: float = typer.Option(0.0, help="share of those second looks delivered before the first"),
    disorder_s: float = typer.Option(0.0, help="delivery-order jitter in event-time seconds"),
    misreads: float = typer.Option(0.0, help="share of reads with one OCR-confusable character swapped"),
    late: int = typer.Option(0, help="reads two days late, delivered last"),
) -> None:
    """Simulate a city's plate reads and write the exact hits, journeys and charges they must give.

    Run the jobs with the city's cameras, segments and zone (city.yaml merged into your config).
    """
    noise = Noise(duplicates=duplicates, extra_reads=extra_reads, early_second_looks=early_second_looks,
                  disorder_s=disorder_s, misreads=misreads, late=late)
    sim = run_simulation(cameras, vehicles, hours, seed, noise)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reads.jsonl").write_bytes(b"".join(encode(r) + b"\n" for r in sim.reads))
    store.write_csv(out / "hotlist.csv", sim.hotlist)
    (out / "city.yaml").write_text(yaml.safe_dump(sim.city, sort_keys=False))
    expected = sim.expected
    (out / "expected.json").write_text(json.dumps({
        "hits": sorted(expected.hits),
        "journeys": sorted(expected.journeys),
        "charges": [[*key, *value] for key, value in sorted(expected.charges.items())],
        "late_reads": sorted(expected.late_reads),
    }, indent=1))
    if kafka:
        bootstrap = broker_with_topics(ctx)
        store.publish(bootstrap, sim.hotlist)
        send = producer(bootstrap)
        for read in sim.reads:
            send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
        send.flush()
    console.print(
        f"{len(sim.reads)} reads, {len(sim.hotlist)} hotlisted plates -> expect {len(expected.hits)} hits, "
        f"{len(expected.journeys)} journeys, {len(expected.charges)} charges; written to {out}"
    )


def bench_jobs(
    ctx: typer.Context,
    reads: int = typer.Option(20_000, help="about this many reads (from the simulator)"),
    rate: float = typer.Option(
        5_000, help="reads per second offered; 0 = a backlog loaded before the workers start (throughput)"
    ),
    workers: int = typer.Option(2, help="worker processes (one per core)"),
    partitions: int = typer.Option(4, help="partitions per topic (the unit the workers split)"),
    hotlist_size: int = typer.Option(0, help="pad the hotlist to this many entries"),
    webhook: bool = typer.Option(False, help="also time read -> webhook request at a local subscriber"),
    storage: BenchStorage = typer.Option(BenchStorage.disk, help="the private broker's storage (disk: as `gantry up` runs it)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Throughput of all three jobs and read -> hit latency, on a private broker started for the run."""
    result = run_bench(reads=reads, rate=rate, workers=workers, partitions=partitions, hotlist_size=hotlist_size, webhook=webhook,
                       progress=not as_json, storage=storage)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            console.print(f"{key:>24}: {value}")
