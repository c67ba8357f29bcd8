"""Commands of sites and car parks: ``gantry parking pay`` and ``gantry bench gate`` (:mod:`sites.bench`)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import typer

from gantry.broker import BenchStorage
from gantry.cli_support import config_of, console, fail, setup_logging
from gantry.errors import GantryError
from gantry.events import normalise_plate, now_utc
from gantry.runtime import endpoints
from gantry.sites import car_park_of

parking_app = typer.Typer(help="Car parks: record a payment so the exit gate opens.", no_args_is_help=True)


@parking_app.command("pay")
def pay(
    ctx: typer.Context,
    car_park: str = typer.Option(..., "--car-park"),
    plate: str = typer.Option(..., "--plate"),
    amount: str | None = typer.Option(None, "--amount", help="what was paid; default: what the stay costs now"),
) -> None:
    """Record that a plate's stay was paid: its exit gate opens (within the tariff's grace minutes)."""
    from sites.payments import record_payment

    config = config_of(ctx)
    try:
        park = car_park_of(config.sites, car_park)
        paid = Decimal(amount).quantize(Decimal("0.01")) if amount is not None else None
        payment = record_payment(endpoints(config).bootstrap_servers, park, normalise_plate(plate), now_utc(), paid)
    except (GantryError, InvalidOperation, ValueError) as exc:
        fail(f"--amount {amount!r}: not an amount" if isinstance(exc, InvalidOperation) else str(exc))
    stay = f"the stay since {payment.stay_entry_ts:%Y-%m-%d %H:%M} UTC" if payment.stay_entry_ts else "an exit with no entry"
    console.print(f"{payment.plate} at {park.id}: {payment.amount} {payment.currency} paid for {stay}")


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
    from ingest.bench import load_table
    from sites import bench

    if not as_json:
        setup_logging()
        console.print(f"benchmarking gate decisions on a private {storage} broker ...")
    figures = bench.run(storage, lists, events, concurrency, rate, rate_seconds)
    if as_json:
        print(json.dumps(figures))
        return
    table = load_table(f"gantry bench gate ({lists:,} list entries, {storage} broker)", figures,
                       counted="decisions", per_s="decisions/s")
    console.print(table)
