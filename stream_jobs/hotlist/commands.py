"""``gantry hotlist``: manage the hotlist through its compacted topic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gantry.cli_support import config_of, fail
from gantry.errors import GantryError
from gantry.events import HotlistEntry, normalise_plate
from gantry.kafka import ensure_topics
from gantry.runtime import endpoints
from stream_jobs.hotlist import store

hotlist_app = typer.Typer(help="Manage the hotlist (plates that raise alerts when read).", no_args_is_help=True)
console = Console()
CSV_COLUMNS = ",".join(store.CSV_FIELDS)


def broker_with_topics(ctx: typer.Context) -> str:
    """The broker address for a command that produces, with the pipeline's topics in place."""
    config = config_of(ctx)
    try:
        bootstrap = endpoints(config).bootstrap_servers
        ensure_topics(config, bootstrap)
    except GantryError as exc:
        fail(str(exc))
    return bootstrap


@hotlist_app.command()
def add(
    ctx: typer.Context,
    plate: str = typer.Option(..., help="the plate; spaces and dashes are ignored"),
    list_: str = typer.Option(..., "--list", help="e.g. stolen, wanted, no_insurance, permit"),
    reason: str = typer.Option("", help="shown to whoever receives the alert"),
    priority: int = typer.Option(3, help="1 (most urgent) to 5"),
    valid_from: datetime | None = typer.Option(None, help="ISO time, UTC unless an offset is given"),
    valid_until: datetime | None = typer.Option(None, help="ISO time, exclusive"),
) -> None:
    """Add or replace the entry for a plate on a list."""
    try:
        entry = HotlistEntry(
            plate=plate, list=list_, reason=reason, priority=priority,
            valid_from=_aware(valid_from), valid_until=_aware(valid_until),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--{'-'.join(str(p) for p in first['loc'])}: {first['msg']}")
    store.publish(broker_with_topics(ctx), [entry])
    console.print(f"added {entry.plate} to {entry.list}")


@hotlist_app.command()
def remove(
    ctx: typer.Context,
    plate: str = typer.Option(...),
    list_: str = typer.Option(..., "--list"),
) -> None:
    """Remove a plate from a list (a tombstone on the compacted topic)."""
    try:
        plate = normalise_plate(plate)
    except ValueError as exc:
        fail(f"--plate: {exc}")
    store.retract(broker_with_topics(ctx), [f"{list_}:{plate}"])
    console.print(f"removed {plate} from {list_}")


@hotlist_app.command("list")
def list_entries(ctx: typer.Context, list_: str | None = typer.Option(None, "--list", help="only this list")) -> None:
    """Show the current hotlist."""
    entries = [e for e in store.current(broker_with_topics(ctx)) if list_ in (None, e.list)]
    table = Table("list", "plate", "priority", "reason", "valid from", "valid until")
    for e in entries:
        table.add_row(e.list, e.plate, str(e.priority), e.reason, _show(e.valid_from), _show(e.valid_until))
    console.print(table)
    console.print(f"{len(entries)} entries")


@hotlist_app.command("import")
def import_csv(ctx: typer.Context, file: Path = typer.Argument(..., help=f"CSV with columns {CSV_COLUMNS}")) -> None:
    """Add every row of a CSV file; any bad row and nothing is imported."""
    try:
        entries = store.read_csv(file)
    except GantryError as exc:
        fail(str(exc))
    count = store.publish(broker_with_topics(ctx), entries)
    console.print(f"imported {count} entries from {file}")


@hotlist_app.command("export")
def export_csv(ctx: typer.Context, file: Path = typer.Argument(...)) -> None:
    """Write the current hotlist to a CSV file that `import` reads back."""
    count = store.write_csv(file, store.current(broker_with_topics(ctx)))
    console.print(f"exported {count} entries to {file}")


def _aware(ts: datetime | None) -> datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=UTC)


def _show(ts: datetime | None) -> str:
    return ts.isoformat() if ts else ""
