"""Commands of the warehouse: ``gantry warehouse``, ``gantry export``, ``gantry privacy``, ``gantry bench sink``."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gantry.cli_support import config_of, fail, setup_logging
from gantry.errors import GantryError
from gantry.runtime import endpoints
from warehouse.access import DEFAULT_MAX_BODY_BYTES
from warehouse.client import open_warehouse

app = typer.Typer(help="The ClickHouse warehouse: serve, migrate, sink, retention.", no_args_is_help=True)
export_app = typer.Typer(help="Exports for billing, hotlist subscribers and analysts.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy duties: erasure of a plate, with an audit record.", no_args_is_help=True)

console = Console()
HealthPort = typer.Option(0, "--health-port", envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics; 0 = any free port")


def _client(ctx: typer.Context):
    try:
        return open_warehouse(config_of(ctx))
    except GantryError as exc:
        fail(str(exc))


@app.command()
def serve(
    ctx: typer.Context,
    port: int = typer.Option(8123, "--port", help="ClickHouse HTTP port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    health_port: int = HealthPort,
    password_file: Path | None = typer.Option(
        None, "--password-file", envvar="GANTRY_WAREHOUSE_PASSWORD_FILE",
        help="require user 'gantry' with the password in this file (made by `gantry up` in <data_dir>/secrets)",
    ),
    allowed_hosts: list[str] = typer.Option(
        [], "--allowed-host", help="a host name clients may use besides 127.0.0.1, localhost and [::1] (repeatable)"
    ),
    max_body_bytes: int = typer.Option(
        DEFAULT_MAX_BODY_BYTES, "--max-body-bytes", min=1, help="the largest request body, compressed or inflated"
    ),
) -> None:
    """Own the embedded chDB warehouse (<data_dir>/warehouse) and serve the ClickHouse HTTP interface."""
    from gantry.credentials import read_secret
    from warehouse.access import LOOPBACK_NAMES, USER, Credential, Policy
    from warehouse.server import serve as serve_warehouse

    setup_logging()
    config = config_of(ctx)
    credential = None
    if password_file is not None:
        try:
            password = read_secret(password_file)
        except OSError as exc:
            fail(f"cannot read the warehouse password from {password_file}: {exc.strerror or exc}")
        if not password:
            fail(f"{password_file} is missing or empty: a warehouse password may not be empty")
        credential = Credential(USER, password)
    elif host not in LOOPBACK_NAMES:
        fail(f"--host {host} would let other machines in without a credential: give --password-file")
    hosts = LOOPBACK_NAMES | {h.lower() for h in allowed_hosts} | ({host.lower()} if host not in ("0.0.0.0", "::") else set())
    try:
        serve_warehouse(config.data_dir / "warehouse", port, health_port, host, Policy(credential, hosts, max_body_bytes))
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

    report = Table("table", "keep (days)", "configured", "counted from", "rows", "size", title="warehouse retention")
    for policy in table_policies(_client(ctx), config_of(ctx).warehouse.retention_days):
        days = "not migrated" if policy.days is None else str(policy.days)
        report.add_row(policy.table, days, str(policy.configured), policy.counted_from, f"{policy.rows:,}", policy.size)
    console.print(report)
    console.print("edit warehouse.retention_days and run `gantry warehouse migrate` to change a policy")


ExportFormat = typer.Option("csv", "--format", help="csv or parquet")
OutDir = typer.Option(Path("."), "--out", help="directory for the files")


def _format(value: str) -> str:
    if value not in ("csv", "parquet"):
        fail(f"--format {value!r}: use csv or parquet")
    return value


@export_app.command("billing")
def export_billing(
    ctx: typer.Context,
    zone: str = typer.Option(..., "--zone"),
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="the charging day, YYYY-MM-DD"),
    fmt: str = ExportFormat,
    out: Path = OutDir,
    force: bool = typer.Option(False, "--force", help="export a day that is not closed yet (provisional)"),
) -> None:
    """A zone's charges for one closed day, with a manifest (rows, total, SHA-256); reproducible."""
    from warehouse.export import export_billing as run_export

    try:
        manifest = run_export(_client(ctx), zone, day.date(), _format(fmt), out, force=force)
    except GantryError as exc:
        fail(str(exc))
    state = "" if manifest.day_closed else " [yellow](provisional: day not closed)[/]"
    console.print(
        f"{out / manifest.file}: {manifest.rows} charges, {manifest.total_amount} {manifest.currency}, "
        f"sha256 {manifest.sha256}{state}"
    )


@export_app.command("parking")
def export_parking(
    ctx: typer.Context,
    car_park: str = typer.Option(..., "--car-park"),
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="the car park's local day, YYYY-MM-DD"),
    fmt: str = ExportFormat,
    out: Path = OutDir,
    force: bool = typer.Option(False, "--force", help="export a day that is not over yet (provisional)"),
) -> None:
    """A car park's revenue for one local day: the stays that ended then, with a manifest; reproducible."""
    from gantry.sites import car_park_of
    from warehouse.parking_export import export_revenue

    config = config_of(ctx)
    try:
        park = car_park_of(config.sites, car_park)
        manifest = export_revenue(_client(ctx), park, day.date(), _format(fmt), out,
                                  lateness_s=config.stream_jobs.allowed_lateness_s, force=force)
    except (GantryError, ValueError) as exc:
        fail(str(exc))
    state = "" if manifest.final else " [yellow](provisional: day not over)[/]"
    console.print(f"{out / manifest.file}: {manifest.rows} stays, {manifest.revenue} {manifest.currency}, "
                  f"sha256 {manifest.sha256}{state}")


TimeOption = {"formats": ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]}


@export_app.command("hits")
def export_hits(
    ctx: typer.Context,
    start: datetime = typer.Option(..., "--from", help="UTC, inclusive", **TimeOption),
    end: datetime = typer.Option(..., "--to", help="UTC, exclusive", **TimeOption),
    list_: str = typer.Option("", "--list", help="one hotlist only"),
    fmt: str = ExportFormat,
    out: Path = OutDir,
) -> None:
    """Hotlist hits in a time range, for subscribers."""
    from warehouse.export import export_hits as run_export

    path = run_export(_client(ctx), _utc(start), _utc(end), _format(fmt), out, list_)
    console.print(f"wrote {path}")


@export_app.command("journeys")
def export_journeys(
    ctx: typer.Context,
    start: datetime = typer.Option(..., "--from", help="UTC, inclusive", **TimeOption),
    end: datetime = typer.Option(..., "--to", help="UTC, exclusive", **TimeOption),
    segment: str = typer.Option("", "--segment", help="one segment only"),
    fmt: str = ExportFormat,
    out: Path = OutDir,
) -> None:
    """Journeys (pseudonymised plates) in a time range, for analysts."""
    from warehouse.export import export_journeys as run_export

    path = run_export(_client(ctx), _utc(start), _utc(end), _format(fmt), out, segment)
    console.print(f"wrote {path}")


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@privacy_app.callback()
def privacy() -> None:
    """Privacy duties: erasure of a plate, with an audit record."""


@privacy_app.command("erase")
def erase(
    ctx: typer.Context,
    plate: str = typer.Option(..., "--plate"),
    reason: str = typer.Option(..., "--reason", help="why, for the audit log (e.g. a request reference)"),
    actor: str | None = typer.Option(
        None, "--actor", envvar="GANTRY_ACTOR", help="who asked; default: the operating-system user"
    ),
) -> None:
    """Delete a plate from every table holding it (in clear or pseudonymised) and its pictures,
    block-list its records still in Kafka, and audit who/when/why."""
    from ingest.snapshots import SnapshotStore, store_url
    from warehouse.privacy import Reach, erase_plate

    config = config_of(ctx)
    try:
        reach = Reach(SnapshotStore(store_url(config)), endpoints(config).bootstrap_servers,
                      embedded_broker=config.broker.bootstrap_servers is None,
                      car_parks=tuple(park.id for site in config.sites for park in site.car_parks))
        erasure = erase_plate(_client(ctx), plate, reason, actor or getpass.getuser(), config.privacy.pseudonym_key(),
                              reach)
    except GantryError as exc:
        fail(str(exc))
    report = Table("table", "rows removed", title=f"erasure (audit subject {erasure.subject[:16]}…)")
    for table, rows in erasure.rows_removed.items():
        report.add_row(table, str(rows))
    console.print(report)
    held = Table("topic", "may hold records from before the erasure until", "why",
                 title="Kafka (the sink and the stream jobs skip these records; direct readers see them)")
    for item in erasure.held:
        held.add_row(item.topic, item.until.isoformat(timespec="seconds") if item.until else "no end set", item.note)
    console.print(held)


def bench_sink(
    ctx: typer.Context,
    rows: int = typer.Option(200_000, "--rows", min=1),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
    dsn: str | None = typer.Option(None, "--dsn", help="an existing warehouse; default: a fresh embedded one"),
) -> None:
    """Rows per second through the sink's decode-batch-insert path into the embedded warehouse."""
    from warehouse.bench import run_bench

    config = config_of(ctx)
    result = run_bench(rows, config.warehouse.batch_rows, dsn, quiet=as_json)
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        console.print(result.summary())


