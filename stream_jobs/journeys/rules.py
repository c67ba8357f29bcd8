"""Journey pairing, outliers and per-interval statistics of segments.

A journey is a passage at a segment's from-camera followed, within ``max_travel_s``, by a passage
of the same plate at its to-camera, with no other from-camera passage in between (the vehicle
started again). Pairing looks at a plate's passages as a whole, so it does not matter which of
the two reads arrived first.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache

from gantry.config import Segment
from gantry.events import Journey, SegmentStats
from gantry.ids import stable_id
from gantry.privacy import pseudonymise
from stream_jobs.passages import Passage

# The keyed hash costs as much as building the rest of a journey, and a plate makes several.
_pseudonym = lru_cache(maxsize=65_536)(pseudonymise)


@dataclass(frozen=True)
class Trip:
    """A passage at a segment's from-camera and the to-camera passage that ended it.

    Its id is known before the :class:`Journey` event is built, so the job can skip journeys it
    has already sent without paying for the event (and the keyed hash of the plate) again.
    """

    segment: Segment
    start: Passage
    end: Passage

    @cached_property  # asked for up to three times per read: whether sent, the event, the record of it
    def journey_id(self) -> str:
        return stable_id("journey", self.segment.id, self.start.first.read_id, self.end.first.read_id)

    @property
    def read_ids(self) -> tuple[str, str]:
        return self.start.first.read_id, self.end.first.read_id

    def journey(self, plate: str, key: str) -> Journey:
        travel_s = (self.end.ts_ms - self.start.ts_ms) / 1000
        return Journey(
            journey_id=self.journey_id,
            segment_id=self.segment.id,
            plate_pseudonym=_pseudonym(plate, key),
            start_ts=self.start.first.ts,
            end_ts=self.end.first.ts,
            travel_s=travel_s,
            speed_kmh=round(self.segment.distance_m / travel_s * 3.6, 3),
            from_read_id=self.start.first.read_id,
            to_read_id=self.end.first.read_id,
        )


def trips(passages: Sequence[Passage], segment: Segment) -> list[Trip]:
    """Every trip of one plate along this segment, in time order; ``passages`` sorted by time."""
    found = []
    start: Passage | None = None
    for p in passages:
        if p.camera_id == segment.from_camera:
            start = p
        elif p.camera_id == segment.to_camera and start is not None:
            if 0 < p.ts_ms - start.ts_ms <= segment.max_travel_s * 1000:
                found.append(Trip(segment, start, p))
            start = None
    return found


def interval_key(segment_id: str, end_ms: int, interval_s: int) -> str:
    """``segment|interval start in epoch seconds``: the statistics interval a journey ending at
    ``end_ms`` counts in. Journeys are keyed by it on their topic, so a busy segment's intervals
    spread over partitions (and workers), while each interval stays on one."""
    end_s = end_ms // 1000
    return f"{segment_id}|{end_s - end_s % interval_s}"


def interval_of(key: str) -> tuple[str, datetime]:
    """The segment and start of an :func:`interval_key`."""
    segment_id, start = key.rsplit("|", 1)
    return segment_id, datetime.fromtimestamp(int(start), UTC)


def outlier_flags(travel_times: Sequence[float], k: float) -> list[bool]:
    """True where a travel time is more than ``k`` median absolute deviations from the median.

    The median and MAD are robust: a few vehicles that stopped for coffee cannot drag the
    threshold towards themselves the way they would drag a mean and standard deviation. With a
    MAD of zero (all equal) nothing is an outlier.
    """
    if len(travel_times) < 3:
        return [False] * len(travel_times)
    median = statistics.median(travel_times)
    mad = statistics.median(abs(t - median) for t in travel_times)
    return [mad > 0 and abs(t - median) > k * mad for t in travel_times]


@dataclass(frozen=True)
class IntervalStats:
    count: int
    outliers: int
    median_travel_s: float | None
    p85_travel_s: float | None
    mean_speed_kmh: float | None


def summarise(journeys: Iterable[tuple[float, float]], k: float) -> IntervalStats:
    """Count, median, 85th percentile and mean speed of the non-outlier journeys of one interval,
    given as (travel_s, speed_kmh) pairs."""
    ordered = sorted(journeys)
    flags = outlier_flags([travel_s for travel_s, _ in ordered], k)
    kept = [j for j, out in zip(ordered, flags, strict=True) if not out]
    if not kept:
        return IntervalStats(0, len(ordered), None, None, None)
    times = [travel_s for travel_s, _ in kept]
    return IntervalStats(
        count=len(kept),
        outliers=len(ordered) - len(kept),
        median_travel_s=round(statistics.median(times), 3),
        p85_travel_s=round(_percentile(times, 0.85), 3),
        mean_speed_kmh=round(statistics.fmean(speed for _, speed in kept), 3),
    )


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def segment_stats(segment_id: str, start: datetime, interval_s: int, stats: IntervalStats) -> SegmentStats:
    return SegmentStats(
        stats_id=stable_id("segment_stats", segment_id, start.isoformat()),
        segment_id=segment_id,
        interval_start=start,
        interval_end=datetime.fromtimestamp(start.timestamp() + interval_s, UTC),
        count=stats.count,
        outliers=stats.outliers,
        median_travel_s=stats.median_travel_s,
        p85_travel_s=stats.p85_travel_s,
        mean_speed_kmh=stats.mean_speed_kmh,
    )
