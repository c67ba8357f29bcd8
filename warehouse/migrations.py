"""Versioned, idempotent schema migrations, plus retention and roles kept in line with config.

A migration runs once per database and is recorded in ``schema_migrations``; its statements are
``IF NOT EXISTS`` so a run cut short can simply be repeated. Retention is not a migration: every
``migrate`` compares each table's TTL with ``warehouse.retention_days`` and alters the ones that
differ, so editing the config and re-running ``migrate`` applies the new policy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from gantry.config import RetentionConfig
from warehouse import schema

log = logging.getLogger(__name__)

Statements = Callable[[RetentionConfig], list[str]]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Statements


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "plate reads and hotlist hits", lambda r: [schema.PLATE_READS.create(r), schema.HOTLIST_HITS.create(r)]),
    Migration(
        2,
        "journeys, segment stats, zone charges and days",
        lambda r: [t.create(r) for t in (schema.JOURNEYS, schema.SEGMENT_STATS, schema.ZONE_CHARGES, schema.ZONE_DAYS)],
    ),
    Migration(3, "camera counts per minute", lambda r: [schema.CAMERA_COUNTS_1M.create(r), schema.CAMERA_COUNTS_1M_VIEW]),
    Migration(4, "audit log", lambda r: [schema.AUDIT_LOG.create(r)]),
    Migration(
        5,
        "low-confidence reads in camera counts",
        lambda r: [
            schema.CAMERA_COUNTS_1M_LOW_CONFIDENCE,
            schema.CAMERA_COUNTS_1M_VIEW_WITH_LOW_CONFIDENCE,
            schema.CAMERA_COUNTS_1M_LOW_CONFIDENCE_BACKFILL,
        ],
    ),
    Migration(6, "webhook delivery failures", lambda r: [schema.WEBHOOK_FAILURES.create(r)]),
    Migration(7, "withdrawn journeys", lambda r: ["ALTER TABLE journeys ADD COLUMN IF NOT EXISTS withdrawn Bool DEFAULT false"]),
    Migration(8, "skip indexes for search by plate and read id", lambda r: list(schema.PLATE_SEARCH_INDEXES)),
    Migration(9, "gate decisions", lambda r: [schema.GATE_DECISIONS.create(r)]),
    Migration(10, "evidence pictures of hits and charges", lambda r: list(schema.EVIDENCE_COLUMNS)),
    Migration(11, "vehicle class reported by cameras, and each charge's class source",
              lambda r: list(schema.VEHICLE_CLASS_COLUMNS)),
    Migration(12, "parking sessions", lambda r: [schema.PARKING_SESSIONS.create(r)]),
    Migration(13, "parking payments, and the payment an exit's decision counted",
              lambda r: [schema.PARKING_PAYMENTS.create(r), schema.GATE_DECISION_PAYMENT]),
)

ANALYST_ROLE = "gantry_analyst"
OPERATOR_ROLE = "gantry_operator"
ANALYST_TABLES = ("journeys", "segment_stats", "camera_counts_1m", "zone_days")
OPERATOR_TABLES = ("plate_reads", "hotlist_hits", "webhook_failures", "gate_decisions", "parking_sessions",
                   "parking_payments")
_TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)", re.DOTALL)
_ACCESS_CONTROL_UNAVAILABLE = (497, 36, 48, 1001)  # ACCESS_DENIED, BAD_ARGUMENTS, NOT_IMPLEMENTED


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    ttl_changed: list[str] = field(default_factory=list)
    roles: bool = False


def applied_versions(client: Client) -> set[int]:
    return {row[0] for row in client.query("SELECT version FROM schema_migrations FINAL").result_rows}


def migrate(client: Client, retention: RetentionConfig) -> MigrationReport:
    """Bring ``client.database`` up to date; safe to run any number of times."""
    database = client.database or "default"
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`", use_database=False)
    client.command(schema.SCHEMA_MIGRATIONS)
    report = MigrationReport()
    done = applied_versions(client)
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements(retention):
            client.command(statement)
        client.insert("schema_migrations", [(migration.version, migration.name)], column_names=["version", "name"])
        report.applied.append(f"{migration.version}: {migration.name}")
        log.info("applied migration %d: %s", migration.version, migration.name)
    report.ttl_changed = reconcile_retention(client, retention)
    report.roles = ensure_roles(client)
    return report


def ttl_days(client: Client) -> dict[str, int]:
    """Each table's current TTL in days, read back from the server's own DDL."""
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": client.database},
    ).result_rows
    found = {name: _TTL_DAYS.search(ddl) for name, ddl in rows}
    return {name: int(match.group(1)) for name, match in found.items() if match}


def reconcile_retention(client: Client, retention: RetentionConfig) -> list[str]:
    current = ttl_days(client)
    changed = []
    for table in schema.RETAINED_TABLES:
        wanted = getattr(retention, table.name)
        if table.name in current and current[table.name] != wanted:
            client.command(f"ALTER TABLE {table.name} MODIFY TTL {table.ttl(retention)}")
            changed.append(f"{table.name}: {current[table.name]} -> {wanted} days")
            log.info("retention of %s changed from %d to %d days", table.name, current[table.name], wanted)
    return changed


def ensure_roles(client: Client) -> bool:
    """Analyst and operator roles on a ClickHouse server; False where there is no access control.

    The embedded chDB engine has no users, so there the roles are skipped, not failed.
    """
    database = client.database
    try:
        client.command(f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE}")
    except DatabaseError as exc:
        if getattr(exc, "code", None) in _ACCESS_CONTROL_UNAVAILABLE:
            log.info("no access control on this warehouse; roles skipped (%s)", exc.__class__.__name__)
            return False
        raise
    client.command(f"CREATE ROLE IF NOT EXISTS {OPERATOR_ROLE}")
    for table in ANALYST_TABLES:
        client.command(f"GRANT SELECT ON `{database}`.{table} TO {ANALYST_ROLE}")
    for table in OPERATOR_TABLES:
        client.command(f"GRANT SELECT ON `{database}`.{table} TO {OPERATOR_ROLE}")
    client.command(f"GRANT {ANALYST_ROLE} TO {OPERATOR_ROLE}")
    return True
