"""Erasure of a plate on request, with an audit record that does not itself hold the plate.

Plates live in clear in the operational tables (reads, hits, charges, and the hits of failed
webhook deliveries) and as keyed pseudonyms in the analytical ones (journeys, made by the stream
job with :func:`gantry.privacy.pseudonymise`). An erasure recomputes the pseudonym with the same
key, deletes the plate's rows from every table of :data:`warehouse.schema.PLATE_ROWS`, and
records who, when, why and how many rows per table in ``audit_log``. The audit row names the
plate by its pseudonym, so the log can prove an erasure of a given plate without keeping it.

The plate also lives outside the warehouse. Its reads' pictures are deleted through the
``image_ref`` of every row that refers to them (reads, and the hits and charges that outlive
them). Kafka keeps records for each topic's retention and cannot delete one record, so
the erasure is first written to the block-list (:mod:`gantry.erasures`), which the sink and the
per-plate job honour, and the plate's entry in the job's changelog (and its stays and payments at
each car park) is tombstoned; the report says
what the topics may still hold and until when. The block-list goes first: from then on no
consumer brings back what the deletes below remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver import Client
from kafka.errors import KafkaError
from pydantic import SecretStr

from gantry.erasures import Held, publish, still_held
from gantry.errors import GantryError
from gantry.events import normalise_plate
from gantry.privacy import pseudonymise
from ingest.snapshots import SnapshotStore
from warehouse.schema import PLATE_ROWS

PICTURES = "snapshots"
"""The audit's count of pictures deleted, next to the rows per table."""
PICTURED_TABLES = ("plate_reads", "hotlist_hits", "zone_charges")
"""The tables whose rows refer to the pictures of a read of their ``plate``."""


@dataclass(frozen=True)
class Erasure:
    subject: str
    erased_at: datetime
    rows_removed: dict[str, int]
    """Rows per table, and pictures under :data:`PICTURES`."""
    held: list[Held]


@dataclass(frozen=True)
class Reach:
    """Where an erasure reaches beyond the warehouse."""

    pictures: SnapshotStore
    bootstrap_servers: str
    embedded_broker: bool
    car_parks: tuple[str, ...] = ()
    """The configured car parks: the plate's stays and payments are keyed ``car_park:plate``."""


def erase_plate(client: Client, plate: str, reason: str, actor: str, key: SecretStr, reach: Reach) -> Erasure:
    """Delete every row holding ``plate``, in clear or pseudonymised, and its pictures; block-list
    its records in Kafka; then audit. What was removed, and what Kafka may still hold."""
    try:
        plate = normalise_plate(plate)
    except ValueError as exc:
        raise GantryError(f"no such plate to erase: {exc}") from None
    if not plate:
        raise GantryError("no plate to erase: give letters or digits")
    if not reason.strip():
        raise GantryError("an erasure needs a reason (--reason), for the audit log")
    subject = pseudonymise(plate, key)
    erased_at = datetime.now(UTC)
    try:
        publish(reach.bootstrap_servers, plate, subject, erased_at, reach.car_parks)
    except (KafkaError, ConnectionError) as exc:
        raise GantryError(f"nothing erased: the erasure could not be written to the broker ({exc})") from None
    parameters = {"plate": plate, "pseudonym": subject}
    # The plate's own reads' pictures, through whichever row still refers to them: a charge's
    # evidence outlives its read. (A possible hit on a listed plate shows another plate's read.)
    refs = client.query(
        " UNION DISTINCT ".join(f"SELECT image_ref FROM {table} WHERE plate = {{plate:String}} AND image_ref IS NOT NULL"
                                for table in PICTURED_TABLES),
        parameters=parameters,
    ).result_rows
    # Pictures before rows: the rows are how the pictures are found, should a deletion fail.
    try:
        pictures = sum(reach.pictures.erase(ref) for (ref,) in refs)
    except ValueError as exc:
        raise GantryError(f"erasure stopped before the warehouse: {exc}") from None
    removed: dict[str, int] = {}
    for table, where in PLATE_ROWS.items():
        removed[table] = int(client.command(f"SELECT count() FROM {table} WHERE {where}", parameters=parameters))
        if removed[table]:
            # mutations_sync: the command returns only once the rows are gone from disk
            client.command(
                f"ALTER TABLE {table} DELETE WHERE {where}", parameters=parameters, settings={"mutations_sync": 2}
            )
    removed[PICTURES] = pictures
    client.insert(
        "audit_log",
        [(erased_at, actor, "erase_plate", subject, reason, removed)],
        column_names=["ts", "actor", "action", "subject", "reason", "rows_removed"],
    )
    return Erasure(subject, erased_at, removed, still_held(erased_at, embedded_broker=reach.embedded_broker))
