"""``gantry dashboards push|export`` and ``gantry report``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException
from rich.progress import Progress

from gantry.cli_support import config_of, console, fail
from gantry.errors import GantryError
from gantry.runtime import endpoints
from warehouse.client import connect
from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.macros import ALL, Selection, duration_s
from warehouse.grafana.push import datasource_model, export, push

dashboards_app = typer.Typer(
    help="Grafana dashboards: push to a Grafana, or export the JSON.", no_args_is_help=True
)


@dashboards_app.command("push")
def push_command(
    ctx: typer.Context,
    grafana_url: str = typer.Option(
        ..., "--grafana-url", envvar="GANTRY_GRAFANA_URL", help="e.g. http://grafana:3000"
    ),
    token_env: str = typer.Option(
        "GANTRY_GRAFANA_TOKEN",
        "--token-env",
        help="environment variable holding a Grafana service-account token",
    ),
    clickhouse_url: str | None = typer.Option(
        None,
        "--clickhouse-url",
        envvar="GANTRY_GRAFANA_CLICKHOUSE_URL",
        help="ClickHouse HTTP URL as Grafana reaches it (default: the warehouse address)",
    ),
) -> None:
    """Create the folder and data source if missing and write the dashboards by uid."""
    config = config_of(ctx)
    token = os.environ.get(token_env)
    try:
        url = clickhouse_url or endpoints(config).warehouse_dsn
        datasource = datasource_model(url, config.warehouse.database)
        api = GrafanaApi.from_url(grafana_url, credential=token)
        report = push(api, all_dashboards(config), datasource)
    except GantryError as exc:
        fail(str(exc))
    except GrafanaException as exc:
        fail(f"push to Grafana at {grafana_url} failed: {exc}")
    for line in report.lines():
        console.print(line, highlight=False)


@dashboards_app.command("export")
def export_command(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="where to write one <uid>.json per dashboard"),
) -> None:
    """Write the dashboard JSON files for Grafana's file provisioning."""
    for path in export(all_dashboards(config_of(ctx)), directory):
        console.print(f"wrote {path}", highlight=False)


def report(
    ctx: typer.Context,
    start: str = typer.Option("now-24h", "--from", help="ISO 8601 time (UTC if no offset) or now-<n>[smhdw]"),
    end: str = typer.Option("now", "--to", help="ISO 8601 time (UTC if no offset) or now[-<n>[smhdw]]"),
    out: Path = typer.Option(Path("report"), "--out", help="directory for the PNG files and index.html"),
    var: list[str] = typer.Option([], "--var", help="a dashboard variable, name=value[,value]; default All"),
) -> None:
    """Render every dashboard panel's data as PNG charts and one HTML page linking them."""
    from warehouse.grafana.report import render_report  # matplotlib loads only for this command

    config = config_of(ctx)
    now = datetime.now(UTC)
    try:
        since, until = parse_when(start, now), parse_when(end, now)
        variables = parse_variables(var)
        if until <= since:
            raise ValueError(f"--to ({until:%Y-%m-%d %H:%M}) is not after --from ({since:%Y-%m-%d %H:%M})")
        client = connect(endpoints(config).warehouse_dsn, config.warehouse.database)
    except (ValueError, GantryError) as exc:
        fail(str(exc))
    dashboards = all_dashboards(config)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering panels", total=sum(len(d.panels) for d in dashboards))
        page = render_report(
            client, dashboards, since, until, out, variables, on_panel=lambda panel: progress.advance(task)
        )
    console.print(f"wrote {page}", highlight=False)


def parse_when(text: str, now: datetime) -> datetime:
    """``now``, ``now-6h`` or an ISO 8601 time; a time without an offset is UTC."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - timedelta(seconds=duration_s(text[4:]))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ISO 8601 like 2026-11-21T08:00 or now-6h)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_variables(pairs: list[str]) -> dict[str, Selection]:
    variables: dict[str, Selection] = {}
    for pair in pairs:
        name, sep, values = pair.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"--var {pair!r}: expected name=value[,value]")
        variables[name.strip()] = [v.strip() for v in values.split(",")] if values != "All" else ALL
    return variables
