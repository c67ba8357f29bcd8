"""The Kafka topics that connect the stages: the only channel between them."""

from __future__ import annotations

FRAMES = "frames"
PLATE_READS = "plate_reads"
HOTLIST = "hotlist"
HOTLIST_HITS = "hotlist_hits"
LATE_READS = "late_reads"
JOURNEYS = "journeys"
SEGMENT_STATS = "segment_stats"
ZONE_CHARGES = "zone_charges"
ZONE_DAYS = "zone_days"
DEAD_LETTERS = "dead_letters"
WEBHOOK_DEAD_LETTERS = "webhook_dead_letters"

ALL = (
    FRAMES,
    PLATE_READS,
    HOTLIST,
    HOTLIST_HITS,
    LATE_READS,
    JOURNEYS,
    SEGMENT_STATS,
    ZONE_CHARGES,
    ZONE_DAYS,
    DEAD_LETTERS,
    WEBHOOK_DEAD_LETTERS,
)
COMPACTED = frozenset({HOTLIST})
