"""``gantry demo``: a synthetic city streamed through every stage, then a summary.

The demo is deliberately an outsider: it drives the pipeline only through the ``gantry``
commands and the topics, and checks the results only through the warehouse's ClickHouse HTTP
interface, as an operator would.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import clickhouse_connect
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gantry import stack
from gantry.config import GantryConfig, load_config
from gantry.errors import StackError
from gantry.runtime import endpoints
from gantry.synthetic import City, Passage, build_city, write_frames

SETTLE_S = 4.0
WAIT_LIMIT_S = 90.0
console = Console()


@dataclass(frozen=True)
class Outcome:
    frames_in: int
    reads_out: int
    passages_read: int
    passages: int
    false_reads: int
    hits: int
    hits_expected: int
    journeys: int
    journeys_expected: int
    charges: int
    charges_expected: int
    warehouse_rows: dict[str, int]

    @property
    def ok(self) -> bool:
        """Every stage delivered: most passages read, and a hit, journeys and charges came out."""
        return (
            self.passages_read >= 0.9 * self.passages
            and self.hits >= 1
            and (self.journeys >= 1 or self.journeys_expected == 0)
            and (self.charges >= 1 or self.charges_expected == 0)
        )


def demo_config(base: GantryConfig, city: City) -> dict:
    """The user's configuration with the synthetic city's cameras, segments and zone added."""
    data = base.model_dump(mode="json", exclude={"cameras", "segments", "zones"})
    data["data_dir"] = str(base.data_dir.resolve())
    data["cameras"] = [c.__dict__ for c in city.cameras]
    data["segments"] = [
        {"id": f"{a.id}-{b.id}", "from_camera": a.id, "to_camera": b.id, "distance_m": 1200, "max_travel_s": 900}
        for a, b in pairwise(city.cameras)
    ]
    data["zones"] = [{"id": "centre", "name": "City centre", "cameras": [city.cameras[0].id]}]
    # Cameras are sent one after another, like a backfill: allow the disorder that makes.
    data["stream_jobs"]["allowed_lateness_s"] = max(data["stream_jobs"]["allowed_lateness_s"], 7200)
    return data


def gantry(*args: str) -> None:
    result = subprocess.run(stack.gantry_command(*args), capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"`gantry {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")


def run_demo(base: GantryConfig, *, cameras: int, vehicles: int, seed: int, keep: bool) -> bool:
    started = time.monotonic()
    city = build_city(
        cameras=cameras, vehicles=vehicles, seed=seed, start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    )
    config_file = base.data_dir / "demo" / "gantry.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(demo_config(base, city), sort_keys=False))
    os.environ["GANTRY_CONFIG"] = str(config_file.resolve())
    config = load_config(config_file)
    console.rule("[bold]Gantry demo")
    console.print(f"{len(city.cameras)} cameras, {vehicles} vehicles, {len(city.passages)} passages; "
                  f"hotlisted plate [bold]{city.hotlisted}[/]")
    with console.status("starting the embedded stack (broker, warehouse, stream jobs, sink, Ray recognizers)…"):
        stack.up(config)
    try:
        outcome = _stream(config, city, seed)
    finally:
        if not keep:
            with console.status("stopping the stack…"):
                stack.down(config)
    _print(outcome, config, time.monotonic() - started, keep)
    return outcome.ok


def _stream(config: GantryConfig, city: City, seed: int) -> Outcome:
    gantry("hotlist", "add", "--plate", city.hotlisted, "--list", "stolen", "--reason", "demo", "--priority", "1")
    with tempfile.TemporaryDirectory(prefix="gantry-demo-") as tmp:
        with console.status("rendering frames…"):
            folders = write_frames(city, Path(tmp), seed)
        for camera_id, folder in folders.items():
            gantry("ingest", "file", str(folder), "--camera", camera_id)
    client = clickhouse_connect.get_client(dsn=endpoints(config).warehouse_dsn)
    client.database = config.warehouse.database
    expected = _expected(city)
    _wait_for_results(client, expected)
    reads = client.query("SELECT DISTINCT camera_id, plate FROM plate_reads").result_rows
    truth = {(p.camera_id, p.plate) for p in city.passages}
    rows = {
        table: _count(client, f"SELECT count() FROM {table} FINAL")
        for table in ("plate_reads", "hotlist_hits", "journeys", "zone_charges", "camera_counts_1m")
    }
    return Outcome(
        frames_in=len(city.passages),
        reads_out=rows["plate_reads"],
        passages_read=len(truth & set(reads)),
        passages=len(truth),
        false_reads=len(set(reads) - truth),
        hits=_count(client, QUERIES["hits"]),
        hits_expected=expected["hits"],
        journeys=_count(client, QUERIES["journeys"]),
        journeys_expected=expected["journeys"],
        charges=_count(client, QUERIES["charges"]),
        charges_expected=expected["charges"],
        warehouse_rows=rows,
    )


QUERIES = {
    "reads": "SELECT count(DISTINCT read_id) FROM plate_reads",
    "hits": "SELECT count(DISTINCT hit_id) FROM hotlist_hits",
    "journeys": "SELECT count() FROM journeys FINAL WHERE NOT withdrawn",
    "charges": "SELECT count(DISTINCT charge_id) FROM zone_charges FINAL WHERE status = 'charged'",
}


def _expected(city: City) -> dict[str, int]:
    """What the ground truth says each job must produce (the demo zone charges all day, every day)."""
    by_vehicle: dict[str, list[Passage]] = {}
    for passage in sorted(city.passages, key=lambda p: p.ts):
        by_vehicle.setdefault(passage.plate, []).append(passage)
    zone_camera = city.cameras[0].id
    london = ZoneInfo("Europe/London")
    return {
        "reads": len(city.passages),
        "hits": len(by_vehicle[city.hotlisted]),
        "journeys": sum(len(route) - 1 for route in by_vehicle.values()),
        "charges": len({(p.plate, p.ts.astimezone(london).date()) for p in city.passages if p.camera_id == zone_camera}),
    }


def _count(client, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


def _wait_for_results(client, expected: dict[str, int]) -> None:
    """Until the warehouse has every expected read, hit, journey and charge, or the counts stop moving."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
               TimeElapsedColumn())
    total = sum(expected.values())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("results in the warehouse", total=total)
        last, still_since = {}, time.monotonic()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while time.monotonic() < deadline:
            seen = {name: _count(client, sql) for name, sql in QUERIES.items()}
            bar.update(task, completed=sum(min(seen[n], expected[n]) for n in expected))
            if seen != last:
                last, still_since = seen, time.monotonic()
            if all(seen[n] >= expected[n] for n in expected):
                return
            if seen["reads"] > 0 and time.monotonic() - still_since > 3 * SETTLE_S:
                return
            time.sleep(0.5)


def _print(outcome: Outcome, config: GantryConfig, elapsed_s: float, keep: bool) -> None:
    table = Table(title="Gantry demo — what came out", show_header=False)
    table.add_row("frames in", str(outcome.frames_in))
    table.add_row("plate reads out", str(outcome.reads_out))
    table.add_row("passages read correctly", f"{outcome.passages_read}/{outcome.passages}")
    table.add_row("reads of plates not in the city", str(outcome.false_reads))
    table.add_row("hotlist hits", f"{outcome.hits} (vehicle passed {outcome.hits_expected} camera(s))")
    table.add_row("journeys timed", f"{outcome.journeys}/{outcome.journeys_expected}")
    table.add_row("congestion charges", f"{outcome.charges}/{outcome.charges_expected}")
    for name, rows in outcome.warehouse_rows.items():
        table.add_row(f"warehouse rows: {name}", str(rows))
    table.add_row("data directory", str(config.data_dir.resolve()))
    table.add_row("logs", str((config.data_dir / "logs").resolve()))
    table.add_row("took", f"{elapsed_s:.0f} s")
    console.print(table)
    verdict = "[green]OK[/]" if outcome.ok else (
        "[red]FAILED[/] (fewer than 90% of passages read, or no hit, journey or charge came out)"
    )
    console.print(f"demo {verdict}" + ("; the stack is still running (`gantry down` stops it)" if keep else ""))
