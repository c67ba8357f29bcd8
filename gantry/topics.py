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
ERASURES = "erasures"
GATE_DECISIONS = "gate_decisions"  # the barriers' answers (sites)
PARKING_SESSIONS = "parking_sessions"  # stays in car parks, the latest per car park and plate (compacted)
PARKING_PAYMENTS = "parking_payments"  # what a plate paid for its stay, the latest per car park and plate (compacted)
VEHICLES = "vehicles"  # the zone operator's vehicle register: a plate's class (compacted)
CHARGE_CONCESSIONS = "charge_concessions"  # exemptions and discounts on zone charges (compacted)
# Internal to the stream jobs (no other stage reads them), all named here: the jobs create them
# (each with the partitioning its job needs), and an erasure reaches those that hold plates.
READS_BY_PLATE = "gantry-jobs-reads-by-plate"  # reads keyed otherwise, re-keyed by plate
PLATE_HISTORIES = "gantry-jobs-plate-histories-changelog"  # the per-plate job's state
SEGMENT_JOURNEYS = "gantry-jobs-segment-journeys-changelog"  # the statistics job's, journeys pseudonymised
ZONE_DAY_PARTS = "gantry-jobs-zone-day-parts"  # each plate_reads partition's share of a charging day
ZONE_DAY_LEDGERS = "gantry-jobs-zone_days-changelog"  # day closing's state (the name its Faust table had)
PARKING_STAYS = "gantry-jobs-parking-changelog"  # the parking job's state
INTERNAL = (READS_BY_PLATE, PLATE_HISTORIES, SEGMENT_JOURNEYS, ZONE_DAY_PARTS, ZONE_DAY_LEDGERS, PARKING_STAYS)

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
    ERASURES,
    GATE_DECISIONS,
    PARKING_SESSIONS,
    PARKING_PAYMENTS,
    VEHICLES,
    CHARGE_CONCESSIONS,
)
COMPACTED = frozenset({HOTLIST, ERASURES, VEHICLES, CHARGE_CONCESSIONS, PARKING_SESSIONS, PARKING_PAYMENTS})
SHORT_LIVED = frozenset({LATE_READS, DEAD_LETTERS, WEBHOOK_DEAD_LETTERS})
"""Copies of reads (plates included) for an operator to look at soon, which an erasure cannot
reach record by record: created with ``retention.ms`` = :data:`SHORT_RETENTION_MS`."""
SHORT_RETENTION_MS = 3 * 86_400_000  # a long weekend: time enough to look at them
FRAMES_RETENTION_MS = 86_400_000
"""Camera pictures of every passing vehicle: read within seconds, kept a day for a recognizer
outage to catch up, no longer (they are personal data, and the largest topic by far)."""
STREAMED = frozenset({PLATE_READS, HOTLIST_HITS, JOURNEYS, SEGMENT_STATS, ZONE_CHARGES})
"""The reads and what the jobs make of them, which the warehouse keeps: the broker holds them for
a sink, subscriber or job to catch up, for :data:`STREAMED_RETENTION_MS` (Kafka's default), set
on the topic so that the embedded broker, which keeps a topic without one for ever and lists
every batch of a partition on each fetch, keeps no more than Kafka would."""
STREAMED_RETENTION_MS = 7 * 86_400_000
RETENTION_MS = ({FRAMES: FRAMES_RETENTION_MS} | dict.fromkeys(SHORT_LIVED, SHORT_RETENTION_MS)
                | dict.fromkeys(STREAMED, STREAMED_RETENTION_MS))
"""The topics Gantry creates with a ``retention.ms``; the others keep what the broker keeps."""
