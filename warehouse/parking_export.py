"""The car-park revenue export: one car park's stays that ended on one local day, with a manifest.

Like the billing file (:mod:`warehouse.export`) it is evidence, so it is reproducible: the
highest version of each stay (``FINAL``), withdrawn ones left out, in a fixed order, no
timestamps added; the manifest carries the row count, the revenue, the count per status and the
file's SHA-256. A stay counts on the local day (the car park's time zone) of its exit, or of its
entry where the exit was never read (its lost-exit fee is due from then); open stays owe nothing
yet. A day is final once it has ended plus ``allowed_lateness_s`` (no passage of that day can
still reach the parking job); before that the export refuses unless forced.

Each stay also says what was paid for it (``paid``, from ``parking_payments``, by
:func:`sites.tariff.paid_for_stay`), and the manifest gives the day's total paid and what is
still owed (the revenue less it: lost-exit fees, say, which are invoiced, not paid at the barrier).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver import Client

from gantry.errors import GantryError
from gantry.site_events import ParkingPayment
from gantry.sites import CarPark
from sites.tariff import paid_for_stay
from warehouse.export import Format, _write_atomically, write_table

PARKING_COLUMNS = (
    "session_id", "car_park_id", "plate", "status", "entry_ts", "exit_ts", "duration_s", "fee", "currency",
    "list", "overstay", "entry_read_id", "exit_read_id", "version",
)  # fmt: skip
_REVENUE_QUERY = f"""SELECT {", ".join(f"`{c}`" for c in PARKING_COLUMNS)} FROM parking_sessions FINAL
WHERE car_park_id = {{park:String}} AND NOT withdrawn AND status != 'open'
AND coalesce(exit_ts, entry_ts) >= {{start:DateTime64(3)}} AND coalesce(exit_ts, entry_ts) < {{end:DateTime64(3)}}
ORDER BY coalesce(exit_ts, entry_ts), session_id"""


_PAYMENTS_QUERY = """SELECT payment_id, car_park_id, plate, stay_entry_ts, paid_at, amount, currency, stay_paid
FROM parking_payments FINAL WHERE car_park_id = {park:String} AND plate IN {plates:Array(String)}"""
PAID = pa.decimal128(12, 2)


class DayNotOver(GantryError):
    """The car park's day (plus the allowed lateness) has not ended: its stays may still change."""


@dataclass(frozen=True)
class RevenueManifest:
    file: str
    format: str
    car_park_id: str
    day: str
    timezone: str
    final: bool
    rows: int
    revenue: str
    paid: str
    owed: str
    currency: str
    stays_by_status: dict[str, int]
    sha256: str
    columns: list[str]


def local_day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants a local day starts and ends (23 or 25 hours on a clock change)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(UTC), datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


def export_revenue(client: Client, park: CarPark, day: date, fmt: Format, out_dir: Path, *, lateness_s: float,
                   force: bool = False, now: datetime | None = None) -> RevenueManifest:
    """Write ``parking_<car park>_<day>.<fmt>`` and its ``.manifest.json``."""
    start, end = local_day_bounds(day, park.timezone)
    final = (now or datetime.now(UTC)) >= end + timedelta(seconds=lateness_s)
    if not final and not force:
        raise DayNotOver(f"car park {park.id} day {day} has not ended plus its allowed lateness "
                         f"({lateness_s:g} s) in {park.timezone}: its stays may still change; "
                         "export after then, or pass --force for a provisional file")
    table = client.query_arrow(_REVENUE_QUERY, parameters={"park": park.id, "start": start, "end": end})
    table = table.append_column("paid", pa.array(_paid(client, park, table), PAID))
    path = out_dir / f"parking_{park.id}_{day.isoformat()}.{fmt}"
    sha = write_table(table, path, fmt)
    statuses = table.column("status").to_pylist()
    revenue = pc.sum(table.column("fee")).as_py() or Decimal("0.00")
    paid = pc.sum(table.column("paid")).as_py() or Decimal("0.00")
    manifest = RevenueManifest(
        file=path.name, format=fmt, car_park_id=park.id, day=day.isoformat(), timezone=park.timezone, final=final,
        rows=table.num_rows, revenue=f"{Decimal(revenue):.2f}", paid=f"{Decimal(paid):.2f}",
        owed=f"{Decimal(revenue) - Decimal(paid):.2f}", currency=park.tariff.currency,
        stays_by_status={s: statuses.count(s) for s in sorted(set(statuses))}, sha256=sha,
        columns=list(table.column_names),
    )
    _write_atomically(path.with_suffix(".manifest.json"), (json.dumps(asdict(manifest), indent=2) + "\n").encode())
    return manifest


def _paid(client: Client, park: CarPark, stays: pa.Table) -> list[Decimal]:
    """What was paid for each stay of the file, from the payments of its plates."""
    plates = sorted(set(stays.column("plate").to_pylist()))
    by_plate: dict[str, list[ParkingPayment]] = {}
    if plates:
        result = client.query(_PAYMENTS_QUERY, parameters={"park": park.id, "plates": plates})
        for row in result.named_results():
            payment = ParkingPayment.model_validate(row | {t: _utc(row[t]) for t in ("stay_entry_ts", "paid_at")})
            by_plate.setdefault(payment.plate, []).append(payment)
    grace = park.tariff.exit_grace_minutes
    return [paid_for_stay(by_plate.get(plate, []), _utc(entry), _utc(exit_), grace)
            for plate, entry, exit_ in zip(*(stays.column(c).to_pylist() for c in ("plate", "entry_ts", "exit_ts")),
                                           strict=True)]


def _utc(ts: datetime | None) -> datetime | None:
    """The warehouse's UTC times, which some clients hand back without their zone."""
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts
