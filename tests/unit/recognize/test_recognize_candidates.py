"""Candidate geometry and read selection, on hand-made boxes."""

import numpy as np

from recognize.base import BoundingBox, Candidate, PlateResult
from recognize.candidates import line_candidates, plausible, select, stacked_rows
from recognize.recognizer import refine_window


def box(x: float, y: float, w: float, h: float, score: float = 0.9) -> Candidate:
    return Candidate(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32), score)


def result(plate: str, conf: float, bbox: BoundingBox, region: str | None = "eu") -> PlateResult:
    return PlateResult(plate, conf, region, bbox)


def test_split_plate_is_merged_into_one_line() -> None:
    parts = [box(100, 50, 40, 20), box(150, 51, 80, 20)]  # district | emblem gap | rest
    lines = line_candidates(parts)
    assert len(lines) == 3  # both parts and their merge, so either reading can win
    merged = lines[-1].bbox
    assert abs(merged.x - 100) <= 1 and merged.w >= 129


def turned(part: Candidate, degrees: float, about: tuple[float, float]) -> Candidate:
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    return Candidate((part.quad - about) @ turn.T + about, part.score)


def test_a_rolled_plate_split_into_overlapping_parts_is_merged() -> None:
    # "1B7 0440" seen rolled by 7 degrees: the detector split it, and its unclip margins make the
    # parts overlap by more than half a line height; their centres lie at different image heights.
    parts = [turned(box(164, 224, 56, 24), -7, (214, 236)), turned(box(205, 224, 59, 24), -7, (214, 236))]
    lines = line_candidates(parts)
    assert len(lines) == 3
    merged = lines[-1].bbox
    assert merged.x <= 165 and merged.x + merged.w >= 262


def test_a_part_that_adds_nothing_to_the_line_is_not_merged() -> None:
    assert len(line_candidates([box(100, 50, 80, 20), box(120, 50, 65, 20)])) == 2  # inside the other


def test_lines_above_one_another_are_not_merged_however_rolled() -> None:
    for degrees in (0, 7, -7):
        rows = [turned(box(100, 50, 60, 20), degrees, (150, 60)), turned(box(150, 62, 60, 20), degrees, (150, 60))]
        assert len(line_candidates(rows)) == 2


def test_lines_of_different_height_are_not_merged() -> None:
    assert len(line_candidates([box(100, 50, 40, 10), box(150, 45, 80, 30)])) == 2


def test_plausible_geometry() -> None:
    assert plausible(box(0, 0, 100, 20))
    assert not plausible(box(0, 0, 30, 5))  # too small to read
    assert not plausible(box(0, 0, 20, 20))  # square: not a plate line
    assert not plausible(box(0, 0, 400, 20))  # a sentence


def test_select_keeps_best_of_overlapping_reads() -> None:
    kept = select([result("AB123CD", 0.9, BoundingBox(10, 10, 100, 20)),
                   result("B123CD", 0.7, BoundingBox(30, 10, 80, 20))])
    assert [k.plate for k in kept] == ["AB123CD"]


def test_select_drops_small_text_beside_a_plate() -> None:
    plate = result("AB123CD", 0.99, BoundingBox(100, 200, 120, 30))
    badge = result("0103E", 0.8, BoundingBox(10, 20, 40, 12), "uk")
    other_car = result("XY987ZZ", 0.8, BoundingBox(400, 150, 100, 25))
    assert select([plate, badge, other_car]) == [plate, other_car]


def test_select_drops_vanity_text_stacked_on_plate() -> None:
    plate = result("AB123CD", 0.99, BoundingBox(100, 200, 120, 30))
    dealer = result("CARSHOP", 0.6, BoundingBox(110, 235, 100, 20), None)
    assert select([plate, dealer]) == [plate]


def test_refine_window_is_clipped_to_image() -> None:
    assert refine_window(BoundingBox(10, 10, 100, 20), (100, 200, 3)) == (0, 0, 140, 42)


def test_the_two_rows_of_a_plate_are_paired_top_first() -> None:
    rows = [box(120, 100, 60, 30), box(110, 136, 80, 30)]  # "ABC" over "1234"
    assert stacked_rows(rows) == [(0, 1)]
    assert stacked_rows(rows[::-1]) == [(1, 0)]


def test_a_smaller_top_row_is_a_row_of_the_plate() -> None:
    assert stacked_rows([box(120, 100, 50, 18), box(100, 122, 90, 30)]) == [(0, 1)]


def test_lines_that_are_not_rows_of_one_plate_are_not_paired() -> None:
    assert stacked_rows([box(120, 100, 60, 30), box(110, 200, 80, 30)]) == []  # far apart
    assert stacked_rows([box(20, 100, 60, 30), box(200, 136, 80, 30)]) == []  # side by side
    assert stacked_rows([box(120, 100, 80, 10), box(110, 112, 80, 30)]) == []  # a caption, a third as tall
    assert stacked_rows([box(60, 100, 300, 30), box(110, 136, 80, 30)]) == []  # a slogan over the number
