"""Erasure of a plate on request, with an audit record that does not itself hold the plate.

Plates live in clear in the operational tables (reads, hits, charges, and the hits of failed
webhook deliveries) and as keyed pseudonyms in the analytical ones (journeys, made by the stream
job with :func:`gantry.privacy.pseudonymise`). An erasure recomputes the pseudonym with the same
key, deletes the plate's rows from every table of :data:`warehouse.schema.PLATE_ROWS`, and
records who, when, why and how many rows per table in ``audit_log``. The audit row names the
plate by its pseudonym, so the log can prove an erasure of a given plate without keeping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver import Client
from pydantic import SecretStr

from gantry.errors import GantryError
from gantry.events import normalise_plate
from gantry.privacy import pseudonymise
from warehouse.schema import PLATE_ROWS


@dataclass(frozen=True)
class Erasure:
    subject: str
    rows_removed: dict[str, int]


def erase_plate(client: Client, plate: str, reason: str, actor: str, key: SecretStr) -> Erasure:
    """Delete every row holding ``plate``, in clear or pseudonymised, then audit; rows removed per table."""
    try:
        plate = normalise_plate(plate)
    except ValueError as exc:
        raise GantryError(f"no such plate to erase: {exc}") from None
    if not plate:
        raise GantryError("no plate to erase: give letters or digits")
    if not reason.strip():
        raise GantryError("an erasure needs a reason (--reason), for the audit log")
    subject = pseudonymise(plate, key)
    parameters = {"plate": plate, "pseudonym": subject}
    removed: dict[str, int] = {}
    for table, where in PLATE_ROWS.items():
        removed[table] = int(client.command(f"SELECT count() FROM {table} WHERE {where}", parameters=parameters))
        if removed[table]:
            # mutations_sync: the command returns only once the rows are gone from disk
            client.command(
                f"ALTER TABLE {table} DELETE WHERE {where}", parameters=parameters, settings={"mutations_sync": 2}
            )
    client.insert(
        "audit_log",
        [(datetime.now(UTC), actor, "erase_plate", subject, reason, removed)],
        column_names=["ts", "actor", "action", "subject", "reason", "rows_removed"],
    )
    return Erasure(subject, removed)
