"""Migrations, retention, exports and erasure against each warehouse (chDB, served, server)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr
from warehouse_helpers import T0, charge, hit, journey, load, reads, webhook_failure, zone_day

from gantry.config import RetentionConfig
from warehouse import schema
from warehouse.export import DayNotClosed, export_billing, export_hits, export_journeys
from warehouse.migrations import MIGRATIONS, applied_versions, migrate, ttl_days
from warehouse.retention import table_policies

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
KEY = SecretStr("test-pseudonym-key")


def migrated_before(client, version: int) -> None:
    """The database as the migrations before ``version`` left it. Their tables are created with
    today's columns: a test drops those that ``version`` adds."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{client.database}`", use_database=False)
    client.command(schema.SCHEMA_MIGRATIONS)
    for migration in [m for m in MIGRATIONS if m.version < version]:
        for statement in migration.statements(RetentionConfig()):
            client.command(statement)
        client.insert("schema_migrations", [(migration.version, migration.name)], column_names=["version", "name"])


def test_migrate_twice_is_idempotent(warehouse):
    first = migrate(warehouse, RetentionConfig())
    second = migrate(warehouse, RetentionConfig())
    assert len(first.applied) == len(MIGRATIONS)
    assert second.applied == [] and second.ttl_changed == []
    assert applied_versions(warehouse) == {m.version for m in MIGRATIONS}
    tables = {row[0] for row in warehouse.query("SHOW TABLES").result_rows}
    assert {t.name for t in schema.RETAINED_TABLES} <= tables
    assert warehouse.command("SELECT count() FROM schema_migrations") == len(MIGRATIONS)


def test_ttl_clauses_follow_the_config_and_change_on_migrate(warehouse):
    migrate(warehouse, RetentionConfig())
    assert ttl_days(warehouse) == {t.name: getattr(RetentionConfig(), t.name) for t in schema.RETAINED_TABLES}
    ddl = warehouse.command("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
                            "AND name = 'plate_reads'")  # fmt: skip
    assert "TTL toDateTime(ts) + toIntervalDay(90)" in ddl
    report = migrate(warehouse, RetentionConfig(plate_reads=30, zone_charges=3000))
    assert sorted(report.ttl_changed) == ["plate_reads: 90 -> 30 days", "zone_charges: 2555 -> 3000 days"]
    assert ttl_days(warehouse)["plate_reads"] == 30
    policies = {p.table: p for p in table_policies(warehouse, RetentionConfig(plate_reads=30, zone_charges=3000))}
    assert policies["plate_reads"].days == 30 and policies["zone_charges"].days == 3000


def test_expired_rows_are_dropped_by_ttl(warehouse):
    migrate(warehouse, RetentionConfig(plate_reads=1))
    stale = [r.model_copy(update={"ts": datetime(2020, 1, 1, tzinfo=UTC)}) for r in reads("cam-ttl", 3)]
    load(warehouse, "plate_reads", stale)
    warehouse.command("OPTIMIZE TABLE plate_reads FINAL")
    assert warehouse.command("SELECT count() FROM plate_reads") == 0


def test_camera_counts_are_kept_per_minute(warehouse):
    migrate(warehouse, RetentionConfig())
    load(warehouse, "plate_reads", reads("cam-c", 150))  # one read a second from 07:00
    load(warehouse, "plate_reads", reads("cam-c", 150))  # delivered twice
    counts = warehouse.query("SELECT minute, uniqExactMerge(reads) FROM camera_counts_1m "
                             "WHERE camera_id = 'cam-c' GROUP BY minute ORDER BY minute").result_rows  # fmt: skip
    assert [c for _, c in counts] == [60, 60, 30]


def test_low_confidence_reads_are_counted_per_minute_after_an_upgrade(warehouse):
    """Migration 5 on a warehouse with reads already counted: old minutes are backfilled, new ones fed."""
    migrated_before(warehouse, 5)
    confidences = [0.5, 0.79, 0.8, 0.95]  # two of every four reads are below 0.8
    before = [r.model_copy(update={"confidence": confidences[i % 4]}) for i, r in enumerate(reads("cam-l", 120))]
    load(warehouse, "plate_reads", before)  # 07:00 and 07:01, counted before the column existed
    assert [m.split(":")[0] for m in migrate(warehouse, RetentionConfig()).applied] == [
        str(m.version) for m in MIGRATIONS[4:]]
    after = [r.model_copy(update={"ts": r.ts + timedelta(minutes=2)}) for r in before[:60]]
    load(warehouse, "plate_reads", after)  # 07:02, counted by the changed view
    load(warehouse, "plate_reads", after)  # delivered twice
    counts = warehouse.query("SELECT minute, uniqExactMerge(reads), uniqExactMerge(low_confidence) FROM camera_counts_1m "
                             "WHERE camera_id = 'cam-l' GROUP BY minute ORDER BY minute").result_rows  # fmt: skip
    assert [(reads_, low) for _, reads_, low in counts] == [(60, 30), (60, 30), (60, 30)]
    assert schema.LOW_CONFIDENCE == 0.8


def test_webhook_failures_are_kept_once_each(warehouse):
    migrate(warehouse, RetentionConfig())
    failures = [webhook_failure(hit(r)) for r in reads("cam-w", 3)]
    load(warehouse, "webhook_dead_letters", failures)
    load(warehouse, "webhook_dead_letters", failures[:1])  # redelivered
    rows = warehouse.query("SELECT v, source_topic, partition, offset, stage, reason, payload, ts "
                           "FROM webhook_failures FINAL ORDER BY payload").result_rows  # fmt: skip
    assert len(rows) == 3
    first = min(failures, key=lambda f: f.payload)
    assert rows[0] == (1, "hotlist_hits", 0, 7, "hotlist-webhooks", first.reason, first.payload,
                       first.ts.replace(tzinfo=None))  # fmt: skip
    assert ttl_days(warehouse)["webhook_failures"] == RetentionConfig().webhook_failures


def _billing_day(client):
    migrate(client, RetentionConfig())
    charges = [charge("zone-a", f"PL{i:03d}", DAY) for i in range(40)]
    # a re-emitted charge: the higher version wins
    charges.append(charge("zone-a", "PL000", DAY, version=2, read_count=5))
    load(client, "zone_charges", charges + [charge("zone-b", "PL001", DAY)])
    return charges


def test_billing_export_refuses_an_open_day_unless_forced(warehouse, tmp_path):
    _billing_day(warehouse)
    with pytest.raises(DayNotClosed, match="not closed"):
        export_billing(warehouse, "zone-a", DAY, "csv", tmp_path)
    manifest = export_billing(warehouse, "zone-a", DAY, "csv", tmp_path, force=True)
    assert manifest.day_closed is False and manifest.rows == 40


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_billing_export_is_deterministic_with_a_true_manifest(warehouse, tmp_path, fmt):
    _billing_day(warehouse)
    load(warehouse, "zone_days", [zone_day("zone-a", DAY, 40, Decimal("600.00"))])
    first = export_billing(warehouse, "zone-a", DAY, fmt, tmp_path / "1")
    second = export_billing(warehouse, "zone-a", DAY, fmt, tmp_path / "2")
    name = f"billing_zone-a_{DAY}.{fmt}"
    data = (tmp_path / "1" / name).read_bytes()
    assert data == (tmp_path / "2" / name).read_bytes()
    manifest_file = f"billing_zone-a_{DAY}.manifest.json"
    assert (tmp_path / "1" / manifest_file).read_bytes() == (tmp_path / "2" / manifest_file).read_bytes()
    assert first == second
    manifest = json.loads((tmp_path / "1" / manifest_file).read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert (manifest["rows"], manifest["total_amount"], manifest["currency"]) == (40, "600.00", "GBP")
    assert manifest["day_closed"] is True
    table = pa_csv.read_csv(tmp_path / "1" / name) if fmt == "csv" else pq.read_table(tmp_path / "1" / name)
    required = {"charge_id", "zone_id", "plate", "charge_date", "vehicle_class", "amount", "currency",
                "first_read_ts", "first_camera_id", "first_read_id", "read_count"}  # fmt: skip
    assert required <= set(table.column_names)
    rows = {r["plate"]: r for r in table.to_pylist()}
    assert rows["PL000"]["read_count"] == 5 and set(table.column("zone_id").to_pylist()) == {"zone-a"}


def test_hits_and_billing_rows_carry_their_evidence_after_an_upgrade(warehouse, tmp_path):
    """Migration 10 on a warehouse with hits and charges from before it: the old rows have no
    picture, the new ones carry their read's, and so do the exported hits and billing rows."""
    migrated_before(warehouse, 10)
    for table in ("hotlist_hits", "zone_charges"):
        warehouse.command(f"ALTER TABLE {table} DROP COLUMN image_ref")  # as the tables were before
    new_read = reads("cam-e", 2)[1]
    warehouse.insert("zone_charges", [(1, "old-charge", "zone-a", "OLD1", DAY, "car", "charged", Decimal("15.00"), "GBP",
                                       T0, "cam-e", "old", 1, 1)],
                     column_names=["v", "charge_id", "zone_id", "plate", "charge_date", "vehicle_class", "status",
                                   "amount", "currency", "first_read_ts", "first_camera_id", "first_read_id",
                                   "read_count", "version"])  # fmt: skip
    warehouse.insert("hotlist_hits", [(1, "old-hit", "old", "cam-e", T0, "OLD1", "OLD1", "stolen", "", 1, "exact", 0.9)],
                     column_names=["v", "hit_id", "read_id", "camera_id", "ts", "plate", "listed_plate", "list",
                                   "reason", "priority", "match", "confidence"])  # fmt: skip
    assert "10" in [m.split(":")[0] for m in migrate(warehouse, RetentionConfig()).applied]
    picture = "file:///snapshots/2026-11-20/cam-e/new-overview.jpg"
    load(warehouse, "zone_charges", [charge("zone-a", "NEW1", DAY).model_copy(update={"image_ref": picture})])
    load(warehouse, "hotlist_hits", [hit(new_read).model_copy(update={"image_ref": picture})])
    load(warehouse, "zone_days", [zone_day("zone-a", DAY, 2, Decimal("30.00"))])
    export_billing(warehouse, "zone-a", DAY, "csv", tmp_path)
    billed = pa_csv.read_csv(tmp_path / f"billing_zone-a_{DAY}.csv").to_pylist()
    assert {r["plate"]: r["image_ref"] for r in billed} == {"OLD1": "", "NEW1": picture}  # CSV: null is empty
    hits = pa_csv.read_csv(export_hits(warehouse, T0, T0 + timedelta(minutes=1), "csv", tmp_path)).to_pylist()
    assert {r["hit_id"]: r["image_ref"] for r in hits} == {"old-hit": "", hit(new_read).hit_id: picture}


def test_charges_keep_their_class_source_and_reads_the_cameras_class_after_an_upgrade(warehouse, tmp_path):
    """Migration 11 on a warehouse whose zone_charges and plate_reads are from before it: old
    charges read as priced at the default class, new ones keep where their class came from, and
    the billing file says so."""
    migrated_before(warehouse, 11)
    warehouse.command("ALTER TABLE zone_charges DROP COLUMN vehicle_class_source")  # as the tables were before
    warehouse.command("ALTER TABLE plate_reads DROP COLUMN vehicle_class")
    warehouse.insert("zone_charges", [(1, "old-charge", "zone-a", "OLD1", DAY, "car", "charged", Decimal("15.00"), "GBP",
                                       T0, "cam-v", "old", 1, 1)],
                     column_names=["v", "charge_id", "zone_id", "plate", "charge_date", "vehicle_class", "status",
                                   "amount", "currency", "first_read_ts", "first_camera_id", "first_read_id",
                                   "read_count", "version"])  # fmt: skip
    assert "11" in [m.split(":")[0] for m in migrate(warehouse, RetentionConfig()).applied]
    load(warehouse, "zone_charges", [charge("zone-a", "LRY1", DAY).model_copy(
        update={"vehicle_class": "lorry", "vehicle_class_source": "register", "amount": Decimal("30.00")})])
    truck = reads("cam-v", 1)[0].model_copy(update={"vehicle_class": "truck"})
    load(warehouse, "plate_reads", [truck])
    assert warehouse.command(f"SELECT vehicle_class FROM plate_reads WHERE read_id = '{truck.read_id}'") == "truck"
    load(warehouse, "zone_days", [zone_day("zone-a", DAY, 2, Decimal("45.00"))])
    export_billing(warehouse, "zone-a", DAY, "csv", tmp_path)
    billed = pa_csv.read_csv(tmp_path / f"billing_zone-a_{DAY}.csv").to_pylist()
    assert {r["plate"]: (r["vehicle_class"], r["vehicle_class_source"]) for r in billed} == {
        "OLD1": ("car", "default"), "LRY1": ("lorry", "register")}


def test_hits_export_covers_the_time_range(warehouse, tmp_path):
    migrate(warehouse, RetentionConfig())
    load(warehouse, "hotlist_hits", [hit(r) for r in reads("cam-h", 120)])
    path = export_hits(warehouse, T0, T0 + timedelta(minutes=1), "csv", tmp_path)
    assert pa_csv.read_csv(path).num_rows == 60


def test_journeys_export_leaves_out_withdrawn_journeys(warehouse, tmp_path):
    migrate(warehouse, RetentionConfig())
    trip = reads("cam-j", 4, plate="JO12RNY")
    kept, replaced = journey(trip[0], trip[1], KEY), journey(trip[2], trip[3], KEY)
    load(warehouse, "journeys", [kept, replaced])
    load(warehouse, "journeys", [replaced.model_copy(update={"withdrawn": True})])  # its latest message
    path = export_journeys(warehouse, T0, T0 + timedelta(hours=1), "csv", tmp_path)
    assert pa_csv.read_csv(path).column("journey_id").to_pylist() == [kept.journey_id]


def test_roles_where_the_warehouse_has_access_control(warehouse):
    report = migrate(warehouse, RetentionConfig())
    if not report.roles:
        pytest.skip("no access control on this warehouse (chDB): roles are skipped by design")
    grants = set(warehouse.query("SELECT role_name, table FROM system.grants WHERE database = currentDatabase()").result_rows)
    assert ("gantry_analyst", "journeys") in grants and ("gantry_analyst", "plate_reads") not in grants
    assert ("gantry_operator", "plate_reads") in grants
