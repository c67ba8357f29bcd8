from recognize.base import BoundingBox, PlateResult
from recognize.vote import FrameRead, Track, continues, edit_distance, vote


def fr(t: float, plate: str, conf: float = 0.9, x: int = 100) -> FrameRead:
    return FrameRead(t, PlateResult(plate, conf, "eu", BoundingBox(x, 200, 120, 30)))


def test_edit_distance() -> None:
    assert edit_distance("AB123", "AB128") == 1
    assert edit_distance("AB123", "B123") == 1


def test_per_position_vote_fixes_single_frame_errors() -> None:
    result = vote(Track([fr(0.0, "RK755AJ"), fr(0.1, "RK755AU", 0.6), fr(0.2, "RK755AJ"), fr(0.3, "PK755AJ", 0.5)]))
    assert result.plate == "RK755AJ"
    assert 0 < result.confidence <= 0.9


def test_a_time_gap_ends_a_track() -> None:
    assert continues(fr(0.0, "RK755AJ"), fr(0.2, "RK755AJ")) is not None
    assert continues(fr(0.2, "RK755AJ"), fr(5.0, "RK755AJ")) is None


def test_another_plate_beside_it_does_not_continue_a_track() -> None:
    assert continues(fr(0.0, "RK755AJ", x=100), fr(0.1, "BA302OZ", x=105)) is None  # text too different
    assert continues(fr(0.0, "RK755AJ", x=100), fr(0.1, "RK755AJ", x=500)) is None  # too far away


def test_a_moving_box_without_overlap_still_continues() -> None:
    assert continues(fr(0.0, "RK755AJ", x=100), fr(0.1, "RK755AJ", x=230)) == 0.0


def test_majority_length_wins() -> None:
    assert vote(Track([fr(0, "RK755AJ"), fr(0.1, "RK755A", 0.95), fr(0.2, "RK755AJ")])).plate == "RK755AJ"
