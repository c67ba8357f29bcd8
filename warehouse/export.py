"""Exports: the daily billing file, hotlist hits for subscribers, journeys for analysts.

A billing file is evidence in a dispute, so it must be reproducible: rows are read with ``FINAL``
(the highest version of each charge) in a fixed order, the writers add no timestamps, and the
manifest carries the row count, the total and the file's SHA-256. Exporting the same day twice
gives byte-identical files. A day is billable once the stream job has closed it (a ``zone_days``
row exists); before that its charges may still change, so the export refuses unless forced.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from clickhouse_connect.driver import Client

from gantry.errors import GantryError

Format = Literal["csv", "parquet"]

BILLING_COLUMNS = (
    "charge_id", "zone_id", "plate", "charge_date", "vehicle_class", "status", "amount", "currency",
    "first_read_ts", "first_camera_id", "first_read_id", "read_count", "version", "image_ref",
    "vehicle_class_source",
)  # fmt: skip
_BILLING_QUERY = f"""SELECT {", ".join(BILLING_COLUMNS)} FROM zone_charges FINAL
WHERE zone_id = {{zone:String}} AND charge_date = {{day:Date}} ORDER BY charge_id"""
_HITS_QUERY = """SELECT hit_id, read_id, camera_id, ts, plate, listed_plate, `list`, reason, priority, `match`,
confidence, image_ref FROM hotlist_hits FINAL WHERE ts >= {start:DateTime64(3)} AND ts < {end:DateTime64(3)}
AND (empty({list:String}) OR `list` = {list:String}) ORDER BY ts, hit_id"""
_JOURNEYS_QUERY = """SELECT journey_id, segment_id, plate_pseudonym, start_ts, end_ts, travel_s, speed_kmh,
from_read_id, to_read_id, outlier FROM journeys FINAL
WHERE NOT withdrawn AND start_ts >= {start:DateTime64(3)} AND start_ts < {end:DateTime64(3)}
AND (empty({segment:String}) OR segment_id = {segment:String}) ORDER BY start_ts, journey_id"""


class DayNotClosed(GantryError):
    """The billing day is still open; its charges may change."""


@dataclass(frozen=True)
class Manifest:
    file: str
    format: str
    zone_id: str
    charge_date: str
    day_closed: bool
    rows: int
    total_amount: str
    currency: str
    sha256: str
    columns: list[str]


def day_closed(client: Client, zone: str, day: date) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM zone_days WHERE zone_id = {zone:String} AND charge_date = {day:Date}",
            parameters={"zone": zone, "day": day},
        )
    )


def export_billing(client: Client, zone: str, day: date, fmt: Format, out_dir: Path, force: bool = False) -> Manifest:
    """Write ``billing_<zone>_<day>.<fmt>`` and its ``.manifest.json``; refuse an open day unless forced."""
    closed = day_closed(client, zone, day)
    if not closed and not force:
        raise DayNotClosed(
            f"zone {zone} day {day} is not closed yet (no zone_days row): its charges may still change; "
            "export after the day closes, or pass --force for a provisional file"
        )
    table = client.query_arrow(_BILLING_QUERY, parameters={"zone": zone, "day": day})
    path = out_dir / f"billing_{zone}_{day.isoformat()}.{fmt}"
    sha = write_table(table, path, fmt)
    currencies = set(table.column("currency").to_pylist())
    if len(currencies) > 1:
        raise GantryError(f"zone {zone} day {day}: charges in several currencies {sorted(currencies)}")
    total = pc.sum(table.column("amount")).as_py() or Decimal("0.00")
    manifest = Manifest(
        file=path.name,
        format=fmt,
        zone_id=zone,
        charge_date=day.isoformat(),
        day_closed=closed,
        rows=table.num_rows,
        total_amount=f"{Decimal(total):.2f}",
        currency=currencies.pop() if currencies else "",
        sha256=sha,
        columns=list(table.column_names),
    )
    _write_atomically(path.with_suffix(".manifest.json"), (json.dumps(asdict(manifest), indent=2) + "\n").encode())
    return manifest


def export_hits(client: Client, start: datetime, end: datetime, fmt: Format, out_dir: Path, list_: str = "") -> Path:
    table = client.query_arrow(_HITS_QUERY, parameters={"start": start, "end": end, "list": list_})
    path = out_dir / f"hotlist_hits_{_span(start, end)}{'_' + list_ if list_ else ''}.{fmt}"
    write_table(table, path, fmt)
    return path


def export_journeys(
    client: Client, start: datetime, end: datetime, fmt: Format, out_dir: Path, segment: str = ""
) -> Path:
    table = client.query_arrow(_JOURNEYS_QUERY, parameters={"start": start, "end": end, "segment": segment})
    path = out_dir / f"journeys_{_span(start, end)}{'_' + segment if segment else ''}.{fmt}"
    write_table(table, path, fmt)
    return path


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}"


def write_table(table: pa.Table, path: Path, fmt: Format) -> str:
    """Write deterministically (no timestamps in the file); returns the file's SHA-256."""
    sink = pa.BufferOutputStream()
    if fmt == "csv":
        pa_csv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd", store_schema=True)
    data = sink.getvalue().to_pybytes()
    _write_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader never sees half a file: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
