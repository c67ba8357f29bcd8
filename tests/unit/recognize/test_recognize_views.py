"""The camera views of the evaluation: what each does to a labelled photo and its plate boxes."""

import numpy as np
import pytest

from recognize.base import BoundingBox
from recognize.views import NEAR_PLATE_SHARE, seen_as

PLATE = BoundingBox(200, 300, 120, 30)


def photo() -> np.ndarray:
    """A grey 640 x 480 scene with one white plate-sized panel at ``PLATE``."""
    image = np.full((480, 640, 3), 90, np.uint8)
    image[PLATE.y : PLATE.y + PLATE.h, PLATE.x : PLATE.x + PLATE.w] = 255
    return image


def white_rows(image: np.ndarray, column: int) -> np.ndarray:
    return np.flatnonzero(image[:, column, 0] > 200)


def test_as_shot_is_the_photo_itself() -> None:
    image = photo()
    out, boxes = seen_as(None, image, (PLATE,), "a.jpg")
    assert out is image and boxes == (PLATE,)


def test_rolled_turns_the_plate_about_itself_to_either_side_by_name() -> None:
    sides = set()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        out, (box,) = seen_as("rolled", photo(), (PLATE,), name)
        left, right = white_rows(out, PLATE.x + 10).mean(), white_rows(out, PLATE.x + PLATE.w - 10).mean()
        drop = (right - left) / (PLATE.w - 20)
        assert abs(abs(drop) - np.tan(np.radians(7))) < 0.03  # 7 degrees, one way or the other
        sides.add(drop > 0)
        assert abs(box.x + box.w / 2 - (PLATE.x + PLATE.w / 2)) <= 1  # turned about the plate
        assert box.w > PLATE.w and box.h > PLATE.h  # the box still holds the turned plate
        assert seen_as("rolled", photo(), (PLATE,), name)[1] == (box,)  # the same each run
    assert sides == {True, False}


def test_near_cuts_the_frame_down_to_three_plate_widths_and_moves_the_box() -> None:
    out, (box,) = seen_as("near", photo(), (PLATE,), "a.jpg")
    assert box.w == PLATE.w and box.h == PLATE.h  # the photo's own resolution
    assert abs(box.w / out.shape[1] - NEAR_PLATE_SHARE) < 0.01
    inside = out[box.y + 3 : box.y + box.h - 3, box.x + 3 : box.x + box.w - 3]
    assert inside.min() > 200  # the box lies on the plate
    assert out[box.y - 6, box.x + box.w // 2, 0] < 120  # and the scene around it is kept


def test_dim_darkens_adds_noise_and_keeps_the_boxes() -> None:
    image = photo()
    out, boxes = seen_as("dim", image, (PLATE,), "a.jpg")
    assert out.shape == image.shape and boxes == (PLATE,)
    assert out.mean() < 0.6 * image.mean()
    assert out[:200, :, 0].std() > 0.5  # the flat scene is noisy now (what JPEG left of it)
    assert np.array_equal(out, seen_as("dim", image, (PLATE,), "a.jpg")[0])
    assert not np.array_equal(out, seen_as("dim", image, (PLATE,), "b.jpg")[0])


def test_blurred_smears_along_the_plate_by_a_third_of_a_character() -> None:
    out, boxes = seen_as("blurred", photo(), (PLATE,), "a.jpg")
    assert boxes == (PLATE,)
    row = out[PLATE.y + PLATE.h // 2, :, 0].astype(int)
    ramp = np.flatnonzero((row > 95) & (row < 250))  # the plate's left and right edges, smeared
    assert len(ramp) == 2 * (round(PLATE.w / 24) - 1)  # each edge ramps over the 5 px smear, less one pixel
    column = out[:, PLATE.x + PLATE.w // 2, 0].astype(int)
    assert set(column[PLATE.y - 3 : PLATE.y]) == {90} and set(column[PLATE.y : PLATE.y + 3]) == {255}  # not across


def test_an_unknown_view_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="rolled, near, dim, blurred"):
        seen_as("fisheye", photo(), (PLATE,), "a.jpg")
