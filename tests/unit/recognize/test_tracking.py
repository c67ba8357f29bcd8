from datetime import UTC, datetime, timedelta

from recognize.base import BoundingBox, PlateResult
from recognize.tracking import Sighting, StreamingVoter

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def sighting(i: int, camera: str = "cam1", seconds: float | None = None, offset: int | None = None) -> Sighting:
    ts = T0 + timedelta(seconds=i * 0.2 if seconds is None else seconds)
    return Sighting(camera, f"{camera}-f{i}", ts, ("frames", 0), i if offset is None else offset)


def result(plate: str, x: int, confidence: float = 0.9) -> PlateResult:
    return PlateResult(plate, confidence, "uk", BoundingBox(x, 400, 120, 30))


def test_a_passing_car_yields_one_voted_read():
    voter = StreamingVoter(max_gap_s=1.0, idle_s=5.0)
    reads = ["AB12CDE", "AB12CDE", "A812CDE", "AB12CDE", "AB12COE"]
    closed = []
    for i, plate in enumerate(reads):
        closed += voter.add(sighting(i), [result(plate, 100 + 15 * i)], now=i)
    assert closed == []
    assert voter.held_back() == {("frames", 0): 0}

    closed = voter.add(sighting(9, seconds=10), [], now=10)
    assert len(closed) == 1
    passage = closed[0]
    assert passage.result.plate == "AB12CDE"
    assert passage.frames == 5
    assert passage.first.frame_id == "cam1-f0"
    assert voter.held_back() == {}


def test_two_cars_side_by_side_stay_apart():
    voter = StreamingVoter(max_gap_s=1.0, idle_s=5.0)
    for i in range(3):
        voter.add(sighting(i), [result("AB12CDE", 100 + 10 * i), result("XY99ZZZ", 900 + 10 * i)], now=i)
    plates = sorted(p.result.plate for p in voter.flush_idle(now=100))
    assert plates == ["AB12CDE", "XY99ZZZ"]


def test_quiet_camera_closes_by_wall_clock_and_cameras_are_independent():
    voter = StreamingVoter(max_gap_s=1.0, idle_s=2.0)
    voter.add(sighting(0, "cam1"), [result("AB12CDE", 100)], now=0.0)
    voter.add(sighting(1, "cam2", offset=7), [result("AB12CDE", 100)], now=1.5)
    assert [p.first.camera_id for p in voter.flush_idle(now=2.5)] == ["cam1"]
    assert voter.held_back() == {("frames", 0): 7}
    assert [p.first.camera_id for p in voter.flush_idle(now=4.0)] == ["cam2"]
