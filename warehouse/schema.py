"""The warehouse tables: one per output topic, laid out like the events they hold.

Each event table's columns carry the event's field names, so the sink inserts an event's own JSON
(``JSONEachRow``) without a mapping layer. Every event table is a ``ReplacingMergeTree`` ordered
by the dashboards' filter columns and ending in the event's stable id: a row delivered twice
(at-least-once) collapses into one, and queries that must be exact before the background merge
use ``FINAL``. Retention is a TTL built from ``warehouse.retention_days``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gantry import events, site_events, topics
from gantry.config import RetentionConfig

# Insert deduplication tokens work on a non-replicated MergeTree only with this window.
DEDUP_SETTINGS = "non_replicated_deduplication_window = 1000"
_MONTHLY_OR_DAILY = re.compile(r"toYYYYMM(DD)?\((\w+)\)")


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    engine: str
    partition_by: str
    order_by: str
    ttl_column: str
    """A Date or DateTime expression; rows expire ``retention_days`` after it."""

    def __post_init__(self) -> None:
        if not _MONTHLY_OR_DAILY.fullmatch(self.partition_by):
            raise ValueError(f"{self.name}: partition_of() does not know PARTITION BY {self.partition_by}")

    def partition_of(self, row: object) -> tuple[int, ...]:
        """The partition ``row`` goes to, as :attr:`partition_by` computes it from the row's UTC
        date or time: the writer cuts an insert spanning too many partitions along them."""
        daily, column = _MONTHLY_OR_DAILY.fullmatch(self.partition_by).groups()
        when = getattr(row, column)
        return (when.year, when.month, when.day) if daily else (when.year, when.month)

    def ttl(self, retention: RetentionConfig) -> str:
        return f"{self.ttl_column} + toIntervalDay({getattr(retention, self.name)})"

    def create(self, retention: RetentionConfig) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ({self.columns})\n"
            f"ENGINE = {self.engine}\nPARTITION BY {self.partition_by}\nORDER BY {self.order_by}\n"
            f"TTL {self.ttl(retention)}\nSETTINGS {DEDUP_SETTINGS}"
        )


@dataclass(frozen=True)
class EventTable:
    """A table fed by the sink from one topic with one event model."""

    table: Table
    topic: str
    model: type[events.Event]


TS = "DateTime64(3, 'UTC')"
_REPLACING = "ReplacingMergeTree"

PLATE_READS = Table(
    "plate_reads",
    f"""v UInt8, read_id String, camera_id LowCardinality(String), ts {TS}, plate String,
    confidence Float32, region LowCardinality(Nullable(String)), direction LowCardinality(Nullable(String)),
    bbox Tuple(x UInt32, y UInt32, w UInt32, h UInt32), frame_id Nullable(String), image_ref Nullable(String),
    vehicle_class LowCardinality(Nullable(String))""",
    _REPLACING,
    "toYYYYMMDD(ts)",
    "(camera_id, ts, read_id)",
    "toDateTime(ts)",
)
HOTLIST_HITS = Table(
    "hotlist_hits",
    f"""v UInt8, hit_id String, read_id String, camera_id LowCardinality(String), ts {TS}, plate String,
    listed_plate String, `list` LowCardinality(String), reason String, priority UInt8,
    `match` LowCardinality(String), confidence Float32, image_ref Nullable(String)""",
    _REPLACING,
    "toYYYYMM(ts)",
    "(`list`, ts, hit_id)",
    "toDateTime(ts)",
)
JOURNEYS = Table(
    "journeys",
    f"""v UInt8, journey_id String, segment_id LowCardinality(String), plate_pseudonym String,
    start_ts {TS}, end_ts {TS}, travel_s Float64, speed_kmh Float64, from_read_id String,
    to_read_id String, outlier Bool, withdrawn Bool DEFAULT false""",
    _REPLACING,
    "toYYYYMM(start_ts)",
    "(segment_id, start_ts, journey_id)",
    "toDateTime(start_ts)",
)
SEGMENT_STATS = Table(
    "segment_stats",
    f"""v UInt8, stats_id String, segment_id LowCardinality(String), interval_start {TS},
    interval_end {TS}, count UInt32, outliers UInt32, median_travel_s Nullable(Float64),
    p85_travel_s Nullable(Float64), mean_speed_kmh Nullable(Float64)""",
    _REPLACING,
    "toYYYYMM(interval_start)",
    "(segment_id, interval_start, stats_id)",
    "toDateTime(interval_start)",
)
ZONE_CHARGES = Table(
    "zone_charges",
    f"""v UInt8, charge_id String, zone_id LowCardinality(String), plate String, charge_date Date,
    vehicle_class LowCardinality(String), status LowCardinality(String), amount Decimal(12, 2),
    currency LowCardinality(String), first_read_ts {TS}, first_camera_id String, first_read_id String,
    read_count UInt32, version UInt32, image_ref Nullable(String),
    vehicle_class_source LowCardinality(String) DEFAULT 'default'""",
    "ReplacingMergeTree(version)",
    "toYYYYMM(charge_date)",
    "(zone_id, charge_date, charge_id)",
    "charge_date",
)
ZONE_DAYS = Table(
    "zone_days",
    f"""v UInt8, zone_id LowCardinality(String), charge_date Date, charges UInt32,
    total_amount Decimal(14, 2), currency LowCardinality(String), closed_at {TS}""",
    "ReplacingMergeTree(closed_at)",
    "toYYYYMM(charge_date)",
    "(zone_id, charge_date)",
    "charge_date",
)
CAMERA_COUNTS_1M = Table(
    "camera_counts_1m",
    "camera_id LowCardinality(String), minute DateTime('UTC'), reads AggregateFunction(uniqExact, String)",
    "AggregatingMergeTree",
    "toYYYYMM(minute)",
    "(camera_id, minute)",
    "minute",
)
# Reads are counted as distinct read ids, so a read inserted twice is still one read.
CAMERA_COUNTS_1M_VIEW = """CREATE MATERIALIZED VIEW IF NOT EXISTS camera_counts_1m_mv TO camera_counts_1m AS
SELECT camera_id, toStartOfMinute(ts) AS minute, uniqExactState(read_id) AS reads
FROM plate_reads GROUP BY camera_id, minute"""
LOW_CONFIDENCE = 0.8
"""Reads below this confidence count as low-confidence in ``camera_counts_1m.low_confidence``."""
_LOW_CONFIDENCE_STATE = f"uniqExactStateIf(read_id, confidence < {LOW_CONFIDENCE})"
CAMERA_COUNTS_1M_LOW_CONFIDENCE = (
    "ALTER TABLE camera_counts_1m ADD COLUMN IF NOT EXISTS low_confidence AggregateFunction(uniqExact, String)"
)
CAMERA_COUNTS_1M_VIEW_WITH_LOW_CONFIDENCE = f"""ALTER TABLE camera_counts_1m_mv MODIFY QUERY
SELECT camera_id, toStartOfMinute(ts) AS minute, uniqExactState(read_id) AS reads,
    {_LOW_CONFIDENCE_STATE} AS low_confidence
FROM plate_reads GROUP BY camera_id, minute"""
# Minutes counted before the column existed get their low-confidence reads from plate_reads.
# Distinct read ids again: reads the view also counted (inserted meanwhile) count once.
CAMERA_COUNTS_1M_LOW_CONFIDENCE_BACKFILL = f"""INSERT INTO camera_counts_1m (camera_id, minute, low_confidence)
SELECT camera_id, toStartOfMinute(ts) AS minute, {_LOW_CONFIDENCE_STATE} AS low_confidence
FROM plate_reads GROUP BY camera_id, minute"""
WEBHOOK_FAILURES = Table(
    "webhook_failures",
    f"""v UInt8, source_topic LowCardinality(String), partition Nullable(Int32), offset Nullable(Int64),
    stage LowCardinality(String), reason String, payload String, ts {TS}""",
    _REPLACING,
    "toYYYYMM(ts)",
    "(ts, stage, source_topic, cityHash64(reason, payload))",
    "toDateTime(ts)",
)
"""Hotlist webhook deliveries that failed after every retry (DeadLetter of ``webhook_dead_letters``).

Ordered down to a hash of the reason and payload, so a dead letter delivered twice is one row.
"""
AUDIT_LOG = Table(
    "audit_log",
    f"""ts {TS}, actor String, action LowCardinality(String), subject String, reason String,
    rows_removed Map(String, UInt64)""",
    "MergeTree",
    "toYYYYMM(ts)",
    "ts",
    "toDateTime(ts)",
)
PLATE_SEARCH_INDEXES = (
    # Writing any skip index costs a buffer sized from max_compress_block_size: with the default
    # 1 MiB a one-row insert needs 4.4 MiB instead of 0.3 (measured on chDB). 64 KiB blocks keep
    # an insert's memory what its rows need, which the sink's split-by-memory relies on; a granule
    # larger than a block is stored as several blocks and read as before.
    "ALTER TABLE plate_reads MODIFY SETTING max_compress_block_size = 65536",
    "ALTER TABLE hotlist_hits MODIFY SETTING max_compress_block_size = 65536",
    "ALTER TABLE plate_reads ADD INDEX IF NOT EXISTS plate_bloom plate TYPE bloom_filter(0.01) GRANULARITY 1",
    "ALTER TABLE plate_reads ADD INDEX IF NOT EXISTS read_id_bloom read_id TYPE bloom_filter(0.01) GRANULARITY 1",
    "ALTER TABLE hotlist_hits ADD INDEX IF NOT EXISTS plate_bloom plate TYPE bloom_filter(0.01) GRANULARITY 1",
    "ALTER TABLE plate_reads MATERIALIZE INDEX plate_bloom",
    "ALTER TABLE plate_reads MATERIALIZE INDEX read_id_bloom",
    "ALTER TABLE hotlist_hits MATERIALIZE INDEX plate_bloom",
)
"""Skip indexes for the search API: reads are sorted by camera and time, so a search by plate (or
a picture's lookup by read id) skips every granule whose bloom filter rules the value out."""
EVIDENCE_COLUMNS = (
    "ALTER TABLE hotlist_hits ADD COLUMN IF NOT EXISTS image_ref Nullable(String)",
    "ALTER TABLE zone_charges ADD COLUMN IF NOT EXISTS image_ref Nullable(String)",
)
"""Hits and charges carry the picture of the read behind them, which outlives the read's own row."""
VEHICLE_CLASS_COLUMNS = (
    "ALTER TABLE plate_reads ADD COLUMN IF NOT EXISTS vehicle_class LowCardinality(Nullable(String))",
    "ALTER TABLE zone_charges ADD COLUMN IF NOT EXISTS vehicle_class_source LowCardinality(String) DEFAULT 'default'",
)
"""The vehicle type a camera reported with a read, and where a charge's class came from (the
vehicle register, the camera, or the tariff's default): what a billing dispute asks first."""
GATE_DECISIONS = Table(
    "gate_decisions",
    f"""v UInt8, decision_id String, read_id String, site_id LowCardinality(String),
    camera_id LowCardinality(String), direction LowCardinality(String), car_park_id LowCardinality(Nullable(String)),
    ts {TS}, plate String, decision LowCardinality(String), reason LowCardinality(String),
    `list` LowCardinality(Nullable(String)), holder Nullable(String), listed_plate Nullable(String),
    `match` LowCardinality(Nullable(String)), flagged Bool, amount Nullable(Decimal(12, 2)),
    currency LowCardinality(Nullable(String)), entry_ts Nullable({TS})""",
    _REPLACING,
    "toYYYYMM(ts)",
    "(site_id, ts, decision_id)",
    "toDateTime(ts)",
)
"""Who was let in or out where, when and why: every barrier's answer (sites, issue 16)."""
PARKING_SESSIONS = Table(
    "parking_sessions",
    f"""v UInt8, session_id String, car_park_id LowCardinality(String), plate String,
    status LowCardinality(String), first_ts {TS}, entry_ts Nullable({TS}), exit_ts Nullable({TS}),
    entry_read_id Nullable(String), exit_read_id Nullable(String), duration_s Nullable(Float64),
    fee Decimal(12, 2), currency LowCardinality(String), `list` LowCardinality(Nullable(String)),
    overstay Bool, withdrawn Bool, version UInt32""",
    "ReplacingMergeTree(version)",
    "toYYYYMM(first_ts)",
    "(car_park_id, first_ts, session_id)",
    "toDateTime(first_ts)",
)
"""Stays in car parks, the highest version per session: ordered and partitioned by the stay's
first passage, which a session's id is made from, so every version of a stay collapses into one."""
PARKING_PAYMENTS = Table(
    "parking_payments",
    f"""v UInt8, payment_id String, car_park_id LowCardinality(String), plate String,
    stay_entry_ts Nullable({TS}), paid_at {TS}, amount Decimal(12, 2), currency LowCardinality(String),
    stay_paid Nullable(Decimal(12, 2))""",
    _REPLACING,
    "toYYYYMM(paid_at)",
    "(car_park_id, paid_at, payment_id)",
    "toDateTime(paid_at)",
)
"""The money taken for stays in car parks, one row per payment (the topic is compacted to a
plate's latest; the sink reads every payment as it comes): the revenue export reconciles the
stays' fees with it."""
GATE_DECISION_PAYMENT = f"ALTER TABLE gate_decisions ADD COLUMN IF NOT EXISTS paid_at Nullable({TS})"
"""An exit's decision names the payment it counted."""
SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY version"""

EVENT_TABLES = (
    EventTable(PLATE_READS, topics.PLATE_READS, events.PlateRead),
    EventTable(HOTLIST_HITS, topics.HOTLIST_HITS, events.HotlistHit),
    EventTable(JOURNEYS, topics.JOURNEYS, events.Journey),
    EventTable(SEGMENT_STATS, topics.SEGMENT_STATS, events.SegmentStats),
    EventTable(ZONE_CHARGES, topics.ZONE_CHARGES, events.ZoneCharge),
    EventTable(ZONE_DAYS, topics.ZONE_DAYS, events.ZoneDay),
    EventTable(WEBHOOK_FAILURES, topics.WEBHOOK_DEAD_LETTERS, events.DeadLetter),
    EventTable(GATE_DECISIONS, topics.GATE_DECISIONS, site_events.GateDecision),
    EventTable(PARKING_SESSIONS, topics.PARKING_SESSIONS, site_events.ParkingSession),
    EventTable(PARKING_PAYMENTS, topics.PARKING_PAYMENTS, site_events.ParkingPayment),
)
RETAINED_TABLES = tuple(t.table for t in EVENT_TABLES) + (CAMERA_COUNTS_1M, AUDIT_LOG)
PLATE_ROWS: dict[str, str] = {
    "plate_reads": "plate = {plate:String}",
    "hotlist_hits": "plate = {plate:String} OR listed_plate = {plate:String}",
    "zone_charges": "plate = {plate:String}",
    "gate_decisions": "plate = {plate:String} OR listed_plate = {plate:String}",
    "parking_sessions": "plate = {plate:String}",
    "parking_payments": "plate = {plate:String}",
    "journeys": "plate_pseudonym = {pseudonym:String}",
    "webhook_failures": "JSONExtractString(payload, 'plate') = {plate:String}"
    " OR JSONExtractString(payload, 'listed_plate') = {plate:String}",
}
"""Every table holding a plate, in clear or pseudonymised, and how to find its rows: what an
erasure must reach. (Webhook failures carry the undelivered hit, plates included, as payload.)"""
