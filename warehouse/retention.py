"""What each table keeps, and what it holds now: the answer to "how long do you keep my data?"."""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver import Client

from gantry.config import RetentionConfig
from warehouse.migrations import ttl_days
from warehouse.schema import RETAINED_TABLES


@dataclass(frozen=True)
class Policy:
    table: str
    days: int | None
    """The TTL the table has now (None: not migrated); ``configured`` differs until the next migrate."""
    configured: int
    counted_from: str
    """The column (expression) the days are counted from."""
    rows: int
    bytes_on_disk: int

    @property
    def size(self) -> str:
        size, units = float(self.bytes_on_disk), ["B", "KiB", "MiB", "GiB", "TiB"]
        while size >= 1024 and len(units) > 1:
            size /= 1024
            units.pop(0)
        return f"{size:.1f} {units[0]}"


def table_policies(client: Client, retention: RetentionConfig) -> list[Policy]:
    sizes = {
        table: (int(rows), int(size))
        for table, rows, size in client.query(
            "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
            "WHERE database = {db:String} AND active GROUP BY table",
            parameters={"db": client.database},
        ).result_rows
    }
    current = ttl_days(client)
    return [
        Policy(
            table=table.name,
            days=current.get(table.name),
            configured=getattr(retention, table.name),
            counted_from=table.ttl_column,
            rows=sizes.get(table.name, (0, 0))[0],
            bytes_on_disk=sizes.get(table.name, (0, 0))[1],
        )
        for table in RETAINED_TABLES
    ]
