"""``gantry vehicles`` and ``gantry concessions``: the zone operator's registers, through their
compacted topics (:mod:`stream_jobs.charges.registers`).

Both groups are made by :func:`register_app` (import, export, list, remove), with what each
checks against the configuration: a class that no zone prices, or a concession for a zone that
does not exist, would be ignored by every charge, so the import refuses it by line.
"""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from gantry.cli_support import fail
from gantry.config import GantryConfig
from gantry.events import ChargeConcession, RegisteredVehicle, normalise_plate
from stream_jobs.charges.registers import CONCESSIONS, VEHICLES
from stream_jobs.register_commands import Check, add_csv_commands, broker_with_topics
from stream_jobs.registers import M, Register

console = Console()


def priced_class(config: GantryConfig) -> Check[RegisteredVehicle]:
    priced = {cls for zone in config.zones for cls in zone.tariff.daily_charge}

    def check(entry: RegisteredVehicle) -> tuple[str, str] | None:
        if config.zones and entry.vehicle_class not in priced:
            return "class", f"{entry.vehicle_class!r} is priced by no zone (priced: {', '.join(sorted(priced))})"
        return None

    return check


def known_zone(config: GantryConfig) -> Check[ChargeConcession]:
    zones = {zone.id for zone in config.zones}

    def check(entry: ChargeConcession) -> tuple[str, str] | None:
        if entry.zone_id not in zones:
            return "zone", f"unknown zone {entry.zone_id!r} (zones: {', '.join(sorted(zones)) or 'none configured'})"
        return None

    return check


def register_app(register: Register[M], help_: str, check: Callable[[GantryConfig], Check[M]]) -> typer.Typer:
    """The commands of one register."""
    app = typer.Typer(help=help_, no_args_is_help=True)
    add_csv_commands(app, register, "register", check)

    @app.command("list")
    def list_entries(ctx: typer.Context, plate: str | None = typer.Option(None, help="only this plate")) -> None:
        """Show the current register."""
        entries = [e for e in register.current(broker_with_topics(ctx)) if plate is None or e.plate == _plate(plate)]
        table = Table(*register.columns)
        for entry in entries:
            row = entry.model_dump(mode="json")
            table.add_row(*(str(row.get(register.fields.get(c, c)) or "") for c in register.columns))
        console.print(table)
        console.print(f"{len(entries)} entries")

    @app.command()
    def remove(ctx: typer.Context, plate: str = typer.Option(..., help="every entry of this plate is removed")) -> None:
        """Remove a plate's entries (a tombstone each on the compacted topic)."""
        bootstrap = broker_with_topics(ctx)
        keys = [e.key for e in register.current(bootstrap) if e.plate == _plate(plate)]
        register.retract(bootstrap, keys)
        console.print(f"removed {len(keys)} entries of {_plate(plate)}")

    return app


def _plate(text: str) -> str:
    try:
        return normalise_plate(text)
    except ValueError as exc:
        fail(f"--plate: {exc}")


vehicles_app = register_app(
    VEHICLES, "The vehicle register: each plate's class for zone charges (trusted before a camera's).", priced_class
)
concessions_app = register_app(
    CONCESSIONS, "Exemptions from and discounts on zone charges, per zone and plate, with validity.", known_zone
)
