"""What the commands of every register share (``gantry hotlist``, ``gantry vehicles``,
``gantry concessions``): the broker with the pipeline's topics, and ``import`` and ``export``
between a register's compacted topic and its CSV form (:class:`stream_jobs.registers.Register`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from gantry.cli_support import config_of, fail
from gantry.config import GantryConfig
from gantry.errors import GantryError
from gantry.kafka import ensure_topics
from gantry.runtime import endpoints
from stream_jobs.registers import M, Register

console = Console()
Check = Callable[[M], tuple[str, str] | None]
"""A rule an entry must meet beyond its schema: None, or the column and what is wrong with it."""


def broker_with_topics(ctx: typer.Context) -> str:
    """The broker address for a command that produces, with the pipeline's topics in place."""
    config = config_of(ctx)
    try:
        bootstrap = endpoints(config).bootstrap_servers
        ensure_topics(config, bootstrap)
    except GantryError as exc:
        fail(str(exc))
    return bootstrap


def add_csv_commands(app: typer.Typer, register: Register[M], name: str,
                     check: Callable[[GantryConfig], Check[M]] | None = None) -> None:
    """``import`` and ``export`` of ``register`` (called ``name`` in the help) on ``app``;
    ``check`` gives, from the configuration, what the import also refuses by line."""
    columns = ",".join(register.columns)

    @app.command("import", help=f"Add or replace every row of a CSV file in the {name}; any bad row and nothing "
                                "is imported.")
    def import_csv(ctx: typer.Context, file: Path = typer.Argument(..., help=f"CSV with columns {columns}")) -> None:
        # A rule across the rows counts the register's entries too: only then is the broker asked first.
        bootstrap = broker_with_topics(ctx) if register.across else None
        try:
            existing = register.current(bootstrap) if bootstrap else []
            entries = register.read_csv(file, check(config_of(ctx)) if check else None, existing)
        except GantryError as exc:
            fail(str(exc))
        count = register.publish(bootstrap or broker_with_topics(ctx), entries)
        console.print(f"imported {count} entries from {file}")

    @app.command("export", help=f"Write the current {name} to a CSV file that `import` reads back.")
    def export_csv(ctx: typer.Context, file: Path = typer.Argument(...)) -> None:
        count = register.write_csv(file, register.current(broker_with_topics(ctx)))
        console.print(f"exported {count} entries to {file}")
