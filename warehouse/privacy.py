"""Erasure of a plate on request, with an audit record that does not itself hold the plate.

Raw plates live only in the operational tables (reads, hits, charges); the analytical tables hold
keyed pseudonyms made by the stream job. An erasure deletes the plate's rows from every raw table
and records who, when, why and how many rows in ``audit_log``. The audit row names the plate by
its keyed hash (HMAC-SHA256 with the pseudonymisation key), so the log can prove an erasure of a
given plate without keeping the plate.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver import Client
from pydantic import SecretStr

from gantry.errors import GantryError
from gantry.events import normalise_plate
from warehouse.schema import RAW_PLATE_COLUMNS


@dataclass(frozen=True)
class Erasure:
    subject: str
    rows_removed: dict[str, int]


def plate_subject(plate: str, key: SecretStr) -> str:
    return hmac.new(key.get_secret_value().encode(), plate.encode(), hashlib.sha256).hexdigest()


def erase_plate(client: Client, plate: str, reason: str, actor: str, key: SecretStr) -> Erasure:
    """Delete every row holding ``plate`` in clear, then audit; returns rows removed per table."""
    plate = normalise_plate(plate)
    if not plate:
        raise GantryError("no plate to erase: give letters or digits")
    if not reason.strip():
        raise GantryError("an erasure needs a reason (--reason), for the audit log")
    removed: dict[str, int] = {}
    for table, columns in RAW_PLATE_COLUMNS.items():
        where = " OR ".join(f"{column} = {{plate:String}}" for column in columns)
        removed[table] = int(client.command(f"SELECT count() FROM {table} WHERE {where}", parameters={"plate": plate}))
        if removed[table]:
            # mutations_sync: the command returns only once the rows are gone from disk
            client.command(
                f"ALTER TABLE {table} DELETE WHERE {where}", parameters={"plate": plate}, settings={"mutations_sync": 2}
            )
    subject = plate_subject(plate, key)
    client.insert(
        "audit_log",
        [(datetime.now(UTC), actor, "erase_plate", subject, reason, removed)],
        column_names=["ts", "actor", "action", "subject", "reason", "rows_removed"],
    )
    return Erasure(subject, removed)
