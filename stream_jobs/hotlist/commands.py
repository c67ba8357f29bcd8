"""``gantry hotlist``: manage the hotlist through its compacted topic."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gantry.cli_support import fail
from gantry.events import HotlistEntry, normalise_plate
from sites.holders import entry_problem
from stream_jobs.hotlist import store
from stream_jobs.register_commands import add_csv_commands, broker_with_topics

hotlist_app = typer.Typer(help="Manage the hotlist (plates that raise alerts when read).", no_args_is_help=True)
console = Console()


@hotlist_app.command()
def add(
    ctx: typer.Context,
    plate: str = typer.Option(..., help="the plate; spaces and dashes are ignored"),
    list_: str = typer.Option(..., "--list", help="e.g. stolen, wanted, no_insurance, permit"),
    reason: str = typer.Option("", help="shown to whoever receives the alert"),
    priority: int = typer.Option(3, help="1 (most urgent) to 5"),
    valid_from: datetime | None = typer.Option(None, help="ISO time, UTC unless an offset is given"),
    valid_until: datetime | None = typer.Option(None, help="ISO time, exclusive"),
    holder: str | None = typer.Option(None, help="who the plate belongs to (2N's user uuid): at most 20 plates "
                                                 "per holder, 10 characters each"),
) -> None:
    """Add or replace the entry for a plate on a list."""
    try:
        entry = HotlistEntry(
            plate=plate, list=list_, reason=reason, priority=priority,
            valid_from=_aware(valid_from), valid_until=_aware(valid_until), holder=holder,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--{'-'.join(str(p) for p in first['loc'])}: {first['msg']}")
    bootstrap = broker_with_topics(ctx)
    # A holder's plates are counted with those already on the hotlist, as an import counts them.
    if entry.holder is not None and (refused := entry_problem(entry, store.current(bootstrap))) is not None:
        fail(f"--{refused[0]}: {refused[1]}; nothing added")
    store.publish(bootstrap, [entry])
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
    table = Table("list", "plate", "holder", "priority", "reason", "valid from", "valid until")
    for e in entries:
        table.add_row(e.list, e.plate, e.holder or "", str(e.priority), e.reason, _show(e.valid_from),
                      _show(e.valid_until))
    console.print(table)
    console.print(f"{len(entries)} entries")


add_csv_commands(hotlist_app, store.HOTLIST, "hotlist")


def _aware(ts: datetime | None) -> datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=UTC)


def _show(ts: datetime | None) -> str:
    return ts.isoformat() if ts else ""
