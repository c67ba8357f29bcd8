"""The API's warehouse queries, built as SQL text with bound parameters and nothing else.

No value a client sends is ever formatted into SQL: every filter is a ``{name:Type}`` placeholder
that the warehouse binds (clickhouse-connect sends them as ``param_*``), so the functions here
only choose *which* fixed conditions to join. They are pure (no I/O), and tested as such.

Plates are matched three ways:

- ``exact``: the normalised plate;
- ``confusable``: the plate or any plate one OCR-confusable glyph away (O/0, I/1, B/8, S/5, Z/2),
  the rule of the hotlist's *possible* hits (:func:`stream_jobs.hotlist.rules.confusable_variants`);
- ``wildcard``: ``?`` is one character, ``*`` any run of them (``AB?12*``), as ``LIKE``.

Pages are in a stable order (newest first, then by read id) and a page's ``next_cursor`` is the
last row's (time, id): the next page starts strictly after it, so rows arriving meanwhile neither
shift nor repeat a page. Rows the warehouse holds twice (at-least-once delivery, before the
background merge) are returned once (``LIMIT 1 BY`` the id).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gantry.events import normalise_plate
from stream_jobs.hotlist.rules import confusable_variants

Match = Literal["exact", "confusable", "wildcard"]
MATCHES: tuple[str, ...] = ("exact", "confusable", "wildcard")
_WILDCARD = re.compile(r"^[A-Z0-9?*]+$")
MAX_VARIANTS = 64


class BadQuery(ValueError):
    """A filter that cannot be run as given: the API answers 400 with the message."""


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def confusable_plates(plate: str) -> list[str]:
    """The plate and every plate one OCR-confusable glyph away, as hotlist screening matches them."""
    found = dict.fromkeys([plate, *confusable_variants(plate)])
    return list(found)[:MAX_VARIANTS]


def wildcard_to_like(pattern: str) -> str:
    """``AB?12*`` -> ``AB_12%``. Plates hold only capitals and digits, so nothing needs escaping;
    anything else (once separators are dropped, as plates are normalised) is refused."""
    cleaned = re.sub(r"[\s\-.]", "", pattern.upper())
    if not cleaned or not _WILDCARD.fullmatch(cleaned):
        raise BadQuery(f"wildcard {pattern!r}: use letters, digits, ? (one character) and * (any run)")
    if not re.search(r"[A-Z0-9]", cleaned):
        raise BadQuery(f"wildcard {pattern!r}: give at least one letter or digit")
    return cleaned.replace("?", "_").replace("*", "%")


def plate_condition(plate: str, match: Match, column: str = "plate") -> tuple[str, dict[str, object]]:
    """The WHERE condition for ``plate`` under ``match``, and its parameters."""
    if match == "wildcard":
        return f"{column} LIKE {{plate_like:String}}", {"plate_like": wildcard_to_like(plate)}
    try:
        normalised = normalise_plate(plate)
    except ValueError as exc:
        raise BadQuery(f"plate {plate!r}: {exc}") from None
    if not normalised:
        raise BadQuery(f"plate {plate!r}: give letters or digits")
    if match == "confusable":
        return f"{column} IN {{plates:Array(String)}}", {"plates": confusable_plates(normalised)}
    if match == "exact":
        return f"{column} = {{plate:String}}", {"plate": normalised}
    raise BadQuery(f"match {match!r}: use {', '.join(MATCHES)}")


def encode_cursor(ts_ms: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts_ms}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, _, row_id = raw.partition(":")
        return int(ms), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadQuery("cursor: not one this API returned") from None


@dataclass(frozen=True)
class Filter:
    """What a search asks for; ``since_ms`` is already clamped to the caller's look-back."""

    since_ms: int
    until_ms: int | None = None
    plate: str | None = None
    match: Match = "exact"
    cameras: tuple[str, ...] = ()
    min_confidence: float | None = None
    lists: tuple[str, ...] = ()
    max_priority: int | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class Query:
    sql: str
    parameters: dict[str, object]


READ_COLUMNS = ("read_id", "camera_id", "ts_ms", "plate", "confidence", "region", "direction", "image_ref")
HIT_COLUMNS = ("hit_id", "read_id", "camera_id", "ts_ms", "plate", "listed_plate", "list", "reason", "priority",
               "match", "confidence")


def _common(f: Filter, id_column: str, descending: bool) -> tuple[list[str], dict[str, object]]:
    where = ["ts >= fromUnixTimestamp64Milli({since_ms:Int64})"]
    params: dict[str, object] = {"since_ms": f.since_ms}
    if f.until_ms is not None:
        where.append("ts < fromUnixTimestamp64Milli({until_ms:Int64})")
        params["until_ms"] = f.until_ms
    if f.plate:
        condition, extra = plate_condition(f.plate, f.match)
        where.append(condition)
        params |= extra
    if f.cameras:
        where.append("camera_id IN {cameras:Array(String)}")
        params["cameras"] = list(f.cameras)
    if f.cursor:
        ms, row_id = decode_cursor(f.cursor)
        sign = "<" if descending else ">"
        where.append(f"(ts, {id_column}) {sign} (fromUnixTimestamp64Milli({{cursor_ms:Int64}}), {{cursor_id:String}})")
        params |= {"cursor_ms": ms, "cursor_id": row_id}
    return where, params


def _page_query(table: str, columns: str, where: list[str], params: dict[str, object], id_column: str,
                descending: bool, limit: int) -> Query:
    """One page of ``table``, plus one row more (whether there is a next page: see :func:`page`)."""
    order = "DESC" if descending else "ASC"
    sql = (f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} "
           f"ORDER BY ts {order}, {id_column} {order} LIMIT 1 BY {id_column} LIMIT {{limit:UInt32}}")
    return Query(sql, params | {"limit": limit + 1})


def reads_query(f: Filter, *, descending: bool = True) -> Query:
    """One page of reads, plus one row more (whether there is a next page)."""
    where, params = _common(f, "read_id", descending)
    if f.min_confidence is not None:
        where.append("confidence >= {min_confidence:Float32}")
        params["min_confidence"] = f.min_confidence
    columns = ("read_id, camera_id, toUnixTimestamp64Milli(ts) AS ts_ms, plate, confidence, region, direction, "
               "image_ref")
    return _page_query("plate_reads", columns, where, params, "read_id", descending, f.limit)


def hits_query(f: Filter) -> Query:
    where, params = _common(f, "hit_id", True)
    if f.lists:
        where.append("`list` IN {lists:Array(String)}")
        params["lists"] = list(f.lists)
    if f.max_priority is not None:
        where.append("priority <= {max_priority:UInt8}")
        params["max_priority"] = f.max_priority
    columns = ("hit_id, read_id, camera_id, toUnixTimestamp64Milli(ts) AS ts_ms, plate, listed_plate, `list`, reason, "
               "priority, `match`, confidence")
    return _page_query("hotlist_hits", columns, where, params, "hit_id", True, f.limit)


def read_query(read_id: str) -> Query:
    """One read by id (the picture's lookup)."""
    return Query(
        "SELECT read_id, camera_id, toUnixTimestamp64Milli(ts) AS ts_ms, plate, confidence, region, direction, "
        "image_ref FROM plate_reads WHERE read_id = {read_id:String} LIMIT 1",
        {"read_id": read_id},
    )


def evidence_query(read_id: str) -> Query:
    """The picture of a read whose own row is gone (past the reads' retention), through a hit or
    a charge that still refers to it, with the read's time ``ts_ms`` (for the look-back)."""
    return Query(
        "SELECT image_ref, toUnixTimestamp64Milli(ts) AS ts_ms FROM hotlist_hits "
        "WHERE read_id = {read_id:String} AND image_ref IS NOT NULL "
        "UNION ALL SELECT image_ref, toUnixTimestamp64Milli(first_read_ts) AS ts_ms FROM zone_charges "
        "WHERE first_read_id = {read_id:String} AND image_ref IS NOT NULL LIMIT 1",
        {"read_id": read_id},
    )


def page(rows: list[tuple], columns: tuple[str, ...], limit: int, id_column: str) -> tuple[list[dict], str | None]:
    """Rows as dicts, at most ``limit`` of them, and the cursor of the next page (None on the last)."""
    items = [dict(zip(columns, row, strict=True)) for row in rows[:limit]]
    more = len(rows) > limit and items
    return items, (encode_cursor(items[-1]["ts_ms"], items[-1][id_column]) if more else None)
