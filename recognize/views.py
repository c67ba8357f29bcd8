"""A labelled photo as another camera would have taken it: a check that recognition generalises.

Each dev set was shot by a few cameras; a region's plates that Gantry has never seen come from
other cameras, mounted otherwise. Plate logic that holds only for the dev sets' framing is fitted
to them, so ``gantry eval recognition --view`` reads the same labelled plates:

- ``rolled``: turned 7 degrees about the plates, to the left or to the right as the file name
  decides (about half each way; a roadside camera beside the lane, a car on a camber or a slope);
- ``near``: cut down to the plates and their car, the plates a third of the frame wide, at the
  photo's own resolution (a gate or car-park camera a few metres from the bumper; the recogniser
  scales the frame as it scales any other, and enlarging it here would only add blur);
- ``dim``: darker (gamma 1.8, 70 % exposure), with sensor noise, saved at JPEG quality 35 (dusk
  on a cheap camera that streams at a low bit rate);
- ``blurred``: smeared along the plate by a third of a character's width (a twenty-fourth of the
  plate's), as a passing car is by a slow shutter.

A view depends on the image's file name only (which side it rolls to, the noise), so runs of the
same code give the same images and their figures compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import cv2
import numpy as np

from recognize.base import BoundingBox

ROLL_DEGREES = 7.0
NEAR_PLATE_SHARE = 0.35  # of the frame's width that the plates span
DIM_GAMMA, DIM_EXPOSURE, DIM_NOISE, DIM_JPEG_QUALITY = 1.8, 0.7, 6.0, 35
BLUR_PLATE_SHARE = 1 / 24  # of the plate's width that the motion smears each point over

Boxes = tuple[BoundingBox, ...]


def _union(boxes: Boxes) -> tuple[float, float, float, float]:
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    return x0, y0, max(b.x + b.w for b in boxes) - x0, max(b.y + b.h for b in boxes) - y0


def _box_of(points: np.ndarray) -> BoundingBox:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return BoundingBox(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))


def rolled(image: np.ndarray, boxes: Boxes, seed: int) -> tuple[np.ndarray, Boxes]:
    x, y, w, h = _union(boxes)
    angle = ROLL_DEGREES if seed % 2 else -ROLL_DEGREES
    turn = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, 1.0)
    out = cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    moved = []
    for b in boxes:
        corners = np.array([[b.x, b.y, 1], [b.x + b.w, b.y, 1], [b.x + b.w, b.y + b.h, 1], [b.x, b.y + b.h, 1]])
        moved.append(_box_of(corners @ turn.T))
    return out, tuple(moved)


def near(image: np.ndarray, boxes: Boxes, seed: int) -> tuple[np.ndarray, Boxes]:
    height, width = image.shape[:2]
    x, y, w, h = _union(boxes)
    cut_w = min(float(width), max(w / NEAR_PLATE_SHARE, w + 4 * h))
    cut_h = min(float(height), cut_w * 0.75)
    x0 = int(max(0.0, min(width - cut_w, x + w / 2 - cut_w / 2)))
    y0 = int(max(0.0, min(height - cut_h, y + h / 2 - cut_h / 2)))
    cut = image[y0 : y0 + int(cut_h), x0 : x0 + int(cut_w)].copy()
    return cut, tuple(BoundingBox(b.x - x0, b.y - y0, b.w, b.h) for b in boxes)


def dim(image: np.ndarray, boxes: Boxes, seed: int) -> tuple[np.ndarray, Boxes]:
    noise = np.random.default_rng(seed).normal(0.0, DIM_NOISE, image.shape)
    darker = ((image / 255.0) ** DIM_GAMMA) * 255.0 * DIM_EXPOSURE + noise
    ok, jpeg = cv2.imencode(".jpg", np.clip(darker, 0, 255).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, DIM_JPEG_QUALITY])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), boxes


def blurred(image: np.ndarray, boxes: Boxes, seed: int) -> tuple[np.ndarray, Boxes]:
    length = max(3, round(max(b.w for b in boxes) * BLUR_PLATE_SHARE)) | 1
    smear = np.zeros((length, length), np.float32)
    smear[length // 2, :] = 1.0 / length
    return cv2.filter2D(image, -1, smear), boxes


VIEWS: dict[str, Callable[[np.ndarray, Boxes, int], tuple[np.ndarray, Boxes]]] = {
    "rolled": rolled, "near": near, "dim": dim, "blurred": blurred,
}


def view_named(view: str) -> Callable[[np.ndarray, Boxes, int], tuple[np.ndarray, Boxes]]:
    """The view called ``view``; a ValueError names the valid ones."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid: {', '.join(VIEWS)}")
    return VIEWS[view]


def seen_as(view: str | None, image: np.ndarray, boxes: Boxes, name: str) -> tuple[np.ndarray, Boxes]:
    """``image`` and its plate ``boxes`` as ``view`` shows them (None: as shot)."""
    if view is None:
        return image, boxes
    return view_named(view)(image, boxes, int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest()))
