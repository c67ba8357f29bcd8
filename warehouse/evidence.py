"""Which pictures the warehouse still refers to: the rule that snapshot retention follows.

A read's pictures (``image_ref``, :mod:`ingest.snapshots`) are evidence for every row that
carries their reference: the read itself, the hits it raised and the charge it is the first read
of. A picture is kept as long as the longest-lived of those rows and no longer: a charge's
evidence lives as long as the charge (``retention_days.zone_charges``), a picture that only a
read refers to goes with the read (``retention_days.plate_reads``).

The store is laid out by the read's day, so a day's pictures are decided together: every picture
of a day within the reads' retention is kept (its read still refers to it), a day past every
referring table's retention is deleted whole, and of a day in between only the pictures that a
hit or a charge still within its own retention refers to are kept. A row counts until its TTL
says it expires, whether or not ClickHouse has merged it away yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from clickhouse_connect.driver import Client

from gantry.config import RetentionConfig
from warehouse import schema

REFERRING = (
    (schema.HOTLIST_HITS, "ts", ""),
    # A charge day is the zone's local date, within a day of its first read's UTC date: the
    # condition lets the query skip the other months' partitions and the other days' granules.
    (schema.ZONE_CHARGES, "first_read_ts", " AND charge_date BETWEEN {day:Date} - 1 AND {day:Date} + 1"),
)
"""The tables besides ``plate_reads`` whose rows refer to a read's picture, the column with that
read's time (the day its pictures are stored under), and a condition on the table's sort key."""


def longest_kept_days(retention: RetentionConfig) -> int:
    """Days after which no row can refer to a read's pictures any more."""
    return max([retention.plate_reads] + [getattr(retention, t.name) for t, _, _ in REFERRING])


def evidence_of_day(client: Client, retention: RetentionConfig, day: date) -> set[str]:
    """The ``image_ref`` of every read of ``day`` (UTC) that a hit or a charge within its
    retention still refers to."""
    start = datetime.combine(day, time(0), UTC)
    queries = [
        f"SELECT image_ref FROM {table.name} WHERE image_ref IS NOT NULL AND {column} >= {{start:DateTime64(3)}} "
        f"AND {column} < {{end:DateTime64(3)}}{narrowing} AND {table.ttl(retention)} > now()"
        for table, column, narrowing in REFERRING
    ]
    rows = client.query(" UNION DISTINCT ".join(queries),
                        parameters={"start": start, "end": start + timedelta(days=1), "day": day}).result_rows
    return {ref for (ref,) in rows}
