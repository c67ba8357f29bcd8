from recognize.base import BoundingBox, PlateResult
from recognize.vote import FrameRead, edit_distance, group_tracks, vote, vote_reads


def fr(t: float, plate: str, conf: float = 0.9, x: int = 100) -> FrameRead:
    return FrameRead(t, PlateResult(plate, conf, "eu", BoundingBox(x, 200, 120, 30)))


def test_edit_distance() -> None:
    assert edit_distance("AB123", "AB128") == 1
    assert edit_distance("AB123", "B123") == 1


def test_per_position_vote_fixes_single_frame_errors() -> None:
    reads = [fr(0.0, "RK755AJ"), fr(0.1, "RK755AU", 0.6), fr(0.2, "RK755AJ"), fr(0.3, "PK755AJ", 0.5)]
    [(track, result)] = vote_reads(reads)
    assert len(track.reads) == 4
    assert result.plate == "RK755AJ"
    assert 0 < result.confidence <= 0.9


def test_time_gap_splits_tracks() -> None:
    tracks = group_tracks([fr(0.0, "RK755AJ"), fr(0.2, "RK755AJ"), fr(5.0, "RK755AJ")])
    assert [len(t.reads) for t in tracks] == [2, 1]


def test_two_cars_side_by_side_stay_apart() -> None:
    reads = [fr(0.0, "RK755AJ", x=100), fr(0.0, "BA302OZ", x=500),
             fr(0.1, "RK755AJ", x=110), fr(0.1, "BA302OZ", x=505)]
    plates = sorted(r.plate for _, r in vote_reads(reads))
    assert plates == ["BA302OZ", "RK755AJ"]


def test_moving_box_without_overlap_still_joins() -> None:
    tracks = group_tracks([fr(0.0, "RK755AJ", x=100), fr(0.1, "RK755AJ", x=230)])
    assert len(tracks) == 1


def test_majority_length_wins() -> None:
    track = group_tracks([fr(0, "RK755AJ"), fr(0.1, "RK755A", 0.95), fr(0.2, "RK755AJ")])[0]
    assert vote(track).plate == "RK755AJ"
