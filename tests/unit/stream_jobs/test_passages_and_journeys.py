from datetime import UTC, datetime

import pytest

from gantry.config import Segment
from gantry.privacy import pseudonymise
from stream_jobs.journeys.rules import outlier_flags, summarise, trips
from stream_jobs.passages import Sighting, passages

T0 = int(datetime(2026, 11, 23, 8, 0, tzinfo=UTC).timestamp() * 1000)
SEG = Segment(id="a-b", from_camera="a", to_camera="b", distance_m=1000, max_travel_s=600)


def s(offset_s: float, camera: str, read_id: str) -> Sighting:
    return Sighting(T0 + int(offset_s * 1000), camera, read_id)


def test_duplicates_and_near_duplicates_make_one_passage():
    reads = [s(0, "a", "r1"), s(0, "a", "r1"), s(4, "a", "r2"), s(12, "a", "r3"), s(30, "a", "r4")]
    result = passages(reads, dedup_window_s=10)
    assert [(p.first.read_id, p.reads) for p in result] == [("r1", 3), ("r4", 1)]


def test_passages_do_not_depend_on_arrival_order():
    reads = [s(0, "a", "r1"), s(5, "a", "r2"), s(100, "b", "r3")]
    assert passages(reads, 10) == passages(list(reversed(reads)), 10)


def test_journey_pairs_latest_from_passage_within_max_travel():
    history = passages([s(0, "a", "r1"), s(200, "a", "r2"), s(300, "b", "r3"), s(2000, "b", "r4")], 10)
    [trip] = trips(history, SEG)
    journey = trip.journey("AB12CDE", key="k")
    assert journey.journey_id == trip.journey_id
    assert (journey.from_read_id, journey.to_read_id, journey.travel_s) == ("r2", "r3", 100.0)
    assert journey.speed_kmh == 36.0
    assert journey.plate_pseudonym == pseudonymise("AB12CDE", "k") != pseudonymise("AB12CDE", "other")
    assert "AB12CDE" not in journey.model_dump_json()


def test_a_passage_ending_one_segment_starts_the_next_under_its_first_look_in_any_arrival_order():
    """Issue 18: a car passes a, b and c; b reads it twice, 2 s apart, and the second look arrives
    first. Each step pairs the reads that have arrived so far, as the per-plate job does."""
    seg_bc = Segment(id="b-c", from_camera="b", to_camera="c", distance_m=1000, max_travel_s=600)
    arrivals = [s(0, "a", "a1"), s(102, "b", "b2"), s(100, "b", "b1"), s(200, "c", "c1")]

    def pairs(arrived: int, segment: Segment) -> list[tuple[str, str, float]]:
        history = passages(arrivals[:arrived], 10)
        return [(t.start.first.read_id, t.end.first.read_id, t.journey("AB12CDE", "k").travel_s)
                for t in trips(history, segment)]

    assert (pairs(2, SEG), pairs(2, seg_bc)) == ([("a1", "b2", 102.0)], [])  # sent, to be withdrawn
    assert (pairs(3, SEG), pairs(3, seg_bc)) == ([("a1", "b1", 100.0)], [])
    assert (pairs(4, SEG), pairs(4, seg_bc)) == ([("a1", "b1", 100.0)], [("b1", "c1", 100.0)])


def test_no_journey_beyond_max_travel_or_backwards():
    assert trips(passages([s(0, "a", "r1"), s(601, "b", "r2")], 10), SEG) == []
    assert trips(passages([s(0, "b", "r1"), s(60, "a", "r2")], 10), SEG) == []


def test_mad_outliers_are_flagged_and_excluded():
    times = [100.0, 102.0, 98.0, 101.0, 99.0, 900.0]
    assert outlier_flags(times, k=5) == [False] * 5 + [True]
    stats = summarise([(t, 3600 / t) for t in times], k=5)
    assert (stats.count, stats.outliers, stats.median_travel_s) == (5, 1, 100.0)
    assert stats.p85_travel_s == pytest.approx(101.4)
    assert outlier_flags([5.0, 5.0, 5.0, 5.0], k=3) == [False] * 4
