"""Geometry of plate candidates: joining split text lines, plausibility, and choosing reads.

The text detector finds lines, not plates, so these rules carry what is true of plates in any
country: a plate's characters form one line (split by spaces, bands, emblems or stickers),
the line is wide and not tiny, and one image shows each plate once.
"""

from __future__ import annotations

import cv2
import numpy as np

from recognize.base import BoundingBox, Candidate, PlateResult
from recognize.detector import line_height, line_width, order_quad

MIN_TEXT_HEIGHT = 8  # px; smaller text cannot be read reliably at 48 px model height
MIN_ASPECT, MAX_ASPECT = 1.5, 12.0  # one plate line: wider than tall, not a paragraph
MAX_PARTS = 3  # a plate line is split into at most this many detected boxes
MAX_OVERLAP = 1.0  # how far, in line heights, two parts of one line may overlap (the unclip margins)
RELATIVE_MIN_HEIGHT = 0.5  # reads less than half as tall as the image's surest plate are dropped
# Two rows of one plate (motorcycles, many two-line national layouts): the rows are stacked
# closely, centred on each other, of comparable height (a smaller top row is common) and width.
ROWS_MAX_GAP = 0.6  # between the rows, in the taller row's heights
ROWS_MAX_OFFSET = 0.25  # between the rows' centres, in the wider row's widths
ROWS_HEIGHT_RATIO = (0.5, 1.6)  # top row's height over the bottom row's
ROWS_WIDTH_RATIO = (0.4, 2.5)  # top row's width over the bottom row's ("KL" over "12345")


def same_line(a: Candidate, b: Candidate) -> bool:
    """Whether ``b`` continues the text line of ``a`` (plates split at spaces/emblems).

    Measured along the parts' own baseline, not the image axes: a plate seen rolled by a few
    degrees (a roadside camera, a car on a slope) is still one line, although its parts' centres
    then lie at different heights in the image.  The detector grows each text blob by its unclip
    margin, so parts that nearly touch overlap by up to a line height; ``b`` must then still
    reach past the end of ``a`` by part of a character.
    """
    ha, hb = line_height(a.quad), line_height(b.quad)
    if not 0.7 < ha / max(hb, 1e-6) < 1.0 / 0.7:
        return False
    edges = (a.quad[1] - a.quad[0]) + (a.quad[2] - a.quad[3]) + (b.quad[1] - b.quad[0]) + (b.quad[2] - b.quad[3])
    along = edges / max(float(np.linalg.norm(edges)), 1e-6)
    across = np.array([-along[1], along[0]], dtype=np.float32)
    h = max(ha, hb)
    a_end = float((a.quad @ along).max())
    b_along = b.quad @ along
    b_start, b_end = float(b_along.min()), float(b_along.max())
    offset = abs(float((b.quad.mean(axis=0) - a.quad.mean(axis=0)) @ across))
    return (offset < 0.4 * h and -MAX_OVERLAP * h < b_start - a_end < 1.2 * h
            and b_end - a_end > 0.5 * h)


def merge_quads(quads: list[np.ndarray]) -> np.ndarray:
    return order_quad(cv2.boxPoints(cv2.minAreaRect(np.concatenate(quads).astype(np.float32))))


def line_candidates(cands: list[Candidate], max_parts: int = MAX_PARTS) -> list[Candidate]:
    """The detected boxes plus every run of up to ``max_parts`` boxes that form one line."""
    cands = sorted(cands, key=lambda c: float(c.quad[:, 0].min()))
    out = list(cands)
    for i, first in enumerate(cands):
        chain = [first]
        for nxt in cands[i + 1 :]:
            if len(chain) == max_parts:
                break
            if same_line(chain[-1], nxt):
                chain.append(nxt)
                out.append(Candidate(merge_quads([c.quad for c in chain]),
                                     min(c.score for c in chain)))
    return out


def stacked_rows(cands: list[Candidate]) -> list[tuple[int, int]]:
    """Index pairs ``(top, bottom)`` of lines that may be the two rows of one plate.

    A two-line plate is read as one line by no text detector: each row is found, and read,
    alone (the bottom row "1234" of "ABC" over "1234").  Whether a pair is a plate is left to
    the reading, as for one-line plates: a state name over the number is a 14-character read
    that no format or the generic family takes.
    """
    boxes = [c.bbox for c in cands]
    return [(i, j) for i, top in enumerate(boxes) for j, bottom in enumerate(boxes)
            if i != j and _rows_of_one_plate(top, bottom)]


def _rows_of_one_plate(top: BoundingBox, bottom: BoundingBox) -> bool:
    gap = bottom.y - (top.y + top.h)
    offset = abs((top.x + top.w / 2) - (bottom.x + bottom.w / 2))
    return (-0.2 * min(top.h, bottom.h) <= gap <= ROWS_MAX_GAP * max(top.h, bottom.h)
            and offset <= ROWS_MAX_OFFSET * max(top.w, bottom.w)
            and ROWS_HEIGHT_RATIO[0] <= top.h / max(bottom.h, 1) <= ROWS_HEIGHT_RATIO[1]
            and ROWS_WIDTH_RATIO[0] <= top.w / max(bottom.w, 1) <= ROWS_WIDTH_RATIO[1])


def plausible(c: Candidate) -> bool:
    """Geometry a plate's character line can have (any country): tall enough, wide, not a paragraph."""
    h, w = line_height(c.quad), line_width(c.quad)
    return h >= MIN_TEXT_HEIGHT and MIN_ASPECT <= w / max(h, 1e-6) <= MAX_ASPECT


def overlaps(a: BoundingBox, b: BoundingBox, thresh: float = 0.3) -> bool:
    """Intersection over the smaller box: a merged line contains its parts."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy > thresh * min(a.w * a.h, b.w * b.h)


def near_below_or_above(a: BoundingBox, b: BoundingBox) -> bool:
    """Whether ``a`` is text stacked on the plate ``b`` (dealer frame, state name, slogan)."""
    x_overlap = min(a.x + a.w, b.x + b.w) - max(a.x, b.x) > 0
    gap = max(a.y - (b.y + b.h), b.y - (a.y + a.h))
    return x_overlap and gap < 1.5 * b.h


def select(results: list[PlateResult]) -> list[PlateResult]:
    """Greedy non-maximum suppression: one read per plate, the most confident.

    Reads that fit no format are also dropped when stacked on a format-matching plate read.
    Text much smaller than the surest format-matching read is dropped too: plates in one
    frame have similar sizes, while badges, stickers and dealer lettering are small; a far
    car's plate is read in later frames, as it comes closer.
    """
    kept: list[PlateResult] = []
    for r in sorted(results, key=lambda r: -r.confidence):
        if any(overlaps(r.bbox, k.bbox) for k in kept):
            continue
        if r.region is None and any(k.region and near_below_or_above(r.bbox, k.bbox) for k in kept):
            continue
        kept.append(r)
    anchor = next((k for k in kept if k.region is not None), None)
    if anchor is None:
        return kept
    return [k for k in kept if k.bbox.h >= RELATIVE_MIN_HEIGHT * anchor.bbox.h]
