"""Commands of the warehouse: ``gantry warehouse``, ``gantry export``, ``gantry privacy``, ``gantry bench sink``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gantry.cli_support import config_of, fail, setup_logging
from gantry.errors import GantryError
from gantry.runtime import endpoints
from warehouse.client import connect

app = typer.Typer(help="the ClickHouse warehouse: serve, migrate, sink, retention", no_args_is_help=True)
export_app = typer.Typer(help="exports for billing, hotlist subscribers and analysts", no_args_is_help=True)
privacy_app = typer.Typer(help="privacy duties: erasure of a plate", no_args_is_help=True)

console = Console()
HealthPort = typer.Option(0, "--health-port", envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics; 0 = any free port")


def _client(ctx: typer.Context):
    config = config_of(ctx)
    try:
        return connect(endpoints(config).warehouse_dsn, config.warehouse.database)
    except GantryError as exc:
        fail(str(exc))


@app.command()
def serve(
    ctx: typer.Context,
    port: int = typer.Option(8123, "--port", help="ClickHouse HTTP port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    health_port: int = HealthPort,
) -> None:
    """Own the embedded chDB warehouse (<data_dir>/warehouse) and serve the ClickHouse HTTP interface."""
    from warehouse.server import serve as serve_warehouse

    setup_logging()
    config = config_of(ctx)
    try:
        serve_warehouse(config.data_dir / "warehouse", port, health_port, host)
    except OSError as exc:
        fail(f"cannot serve the warehouse on {host}:{port}: {exc.strerror or exc}")


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or update the tables (versioned, idempotent) and apply the configured retention."""
    from warehouse.migrations import migrate as run_migrations

    config = config_of(ctx)
    report = run_migrations(_client(ctx), config.warehouse.retention_days)
    for line in report.applied:
        console.print(f"applied migration {line}")
    for line in report.ttl_changed:
        console.print(f"retention changed: {line}")
    if not report.applied and not report.ttl_changed:
        console.print("warehouse schema is up to date")
    console.print("roles: " + ("analyst and operator roles granted" if report.roles else "skipped (no access control)"))


@app.command()
def sink(ctx: typer.Context, health_port: int = HealthPort) -> None:
    """Consume the output topics into the warehouse, in batches, at least once without duplicates."""
    from warehouse.sink import run_sink

    setup_logging()
    try:
        run_sink(config_of(ctx), health_port)
    except GantryError as exc:
        fail(str(exc))


@app.command()
def retention(ctx: typer.Context) -> None:
    """Each table's retention policy and current size."""
    from warehouse.retention import table_policies

    report = Table("table", "keep (days)", "TTL", "rows", "size", title="warehouse retention")
    for policy in table_policies(_client(ctx), config_of(ctx).warehouse.retention_days):
        report.add_row(policy.table, str(policy.days), policy.ttl, f"{policy.rows:,}", policy.size)
    console.print(report)


