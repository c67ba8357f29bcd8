"""``gantry bench gate``: the barrier's answer at the edge endpoint, measured (see :mod:`sites.bench`)."""

from __future__ import annotations

import json

import typer

from gantry.broker import BenchStorage
from gantry.cli_support import console, setup_logging


def bench_gate(
    lists: int = typer.Option(10_000, "--lists", min=1, help="hotlist entries the site's lists hold"),
    events: int = typer.Option(5_000, "--events", min=100, help="decisions asked for as fast as possible"),
    concurrency: int = typer.Option(32, "--concurrency", min=1, help="HTTP connections"),
    rate: float = typer.Option(200, "--rate", min=1, help="requests/s of the latency run"),
    rate_seconds: float = typer.Option(20, "--rate-seconds", min=1, help="length of the latency run"),
    storage: BenchStorage = typer.Option(BenchStorage.disk, help="the private broker's storage (disk: as `gantry up`)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object as the last line"),
) -> None:
    """Gate decisions/s and their latency (p50/p99) at the edge endpoint, on a private broker."""
    from rich.table import Table

    from sites import bench

    if not as_json:
        setup_logging()
        console.print(f"benchmarking gate decisions on a private {storage} broker ...")
    figures = bench.run(storage, lists, events, concurrency, rate, rate_seconds)
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=f"gantry bench gate ({lists:,} list entries, {storage} broker)")
    for column in ("run", "decisions", "decisions/s", "p50 ms", "p99 ms", "failures"):
        table.add_column(column, justify="right" if column != "run" else "left")
    table.add_row(f"flat out, {concurrency} connections", str(figures["decisions"]),
                  f"{figures['decisions_per_s']:,.0f}", f"{figures['flat_out_p50_ms']:.1f}",
                  f"{figures['flat_out_p99_ms']:.1f}", str(figures["flat_out_failures"]))
    table.add_row(f"paced at {rate:g}/s", str(figures["paced_decisions"]), f"{figures['paced_achieved_per_s']:,.0f}",
                  f"{figures['p50_ms']:.1f}", f"{figures['p99_ms']:.1f}", str(figures["paced_failures"]))
    console.print(table)
