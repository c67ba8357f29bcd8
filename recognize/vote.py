"""Video voting: the rules that turn per-frame reads of one camera into one read per vehicle.

A plate is usually read in many consecutive frames, each with a few wrong characters. A read
joins the track it :func:`continues` (box overlap or proximity, time gap, similar text), then
every character position is voted on, weighted by read confidence, so one blurred frame cannot
decide the result. :mod:`recognize.tracking` applies them to frames as they stream in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from recognize.base import BoundingBox, PlateResult


@dataclass(frozen=True)
class FrameRead:
    """A plate read from one frame of one camera at ``timestamp`` seconds."""

    timestamp: float
    result: PlateResult


@dataclass
class Track:
    """Reads believed to show the same plate."""

    reads: list[FrameRead] = field(default_factory=list)

    @property
    def last(self) -> FrameRead:
        return self.reads[-1]


def iou(a: BoundingBox, b: BoundingBox) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def close(a: BoundingBox, b: BoundingBox, max_shift: float) -> bool:
    """Centres within ``max_shift`` box widths: a moving car may not overlap its last box."""
    dx = (a.x + a.w / 2) - (b.x + b.w / 2)
    dy = (a.y + a.h / 2) - (b.y + b.h / 2)
    return (dx * dx + dy * dy) ** 0.5 <= max_shift * max(a.w, b.w, 1)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def continues(last: FrameRead, read: FrameRead, *, max_gap_s: float = 1.0, min_iou: float = 0.1,
              max_shift: float = 1.5, max_edits: int = 2) -> float | None:
    """How well ``read`` continues a track that ended with ``last`` (its box overlap), or None.

    It must come within ``max_gap_s``, with a box that overlaps (IoU >= ``min_iou``) or is near
    (``max_shift`` widths), and text that differs by at most ``max_edits`` characters, so two
    cars side by side stay apart.
    """
    if read.timestamp - last.timestamp > max_gap_s:
        return None
    if edit_distance(read.result.plate, last.result.plate) > max_edits:
        return None
    overlap = iou(read.result.bbox, last.result.bbox)
    near = overlap >= min_iou or close(read.result.bbox, last.result.bbox, max_shift)
    return overlap if near else None


def vote(track: Track) -> PlateResult:
    """One read for a track: the confidence-weighted majority length, then per-position votes.

    The confidence is the winning share of the weight, averaged over positions, times the best
    single-frame confidence; it grows with agreement across frames, not with frame count alone.
    """
    by_length: dict[int, float] = defaultdict(float)
    for r in track.reads:
        by_length[len(r.result.plate)] += r.result.confidence
    length = max(by_length, key=lambda n: (by_length[n], n))
    same = [r.result for r in track.reads if len(r.result.plate) == length]
    chars: list[str] = []
    shares: list[float] = []
    for i in range(length):
        weights: dict[str, float] = defaultdict(float)
        for res in same:
            weights[res.plate[i]] += res.confidence
        ch = max(weights, key=lambda c: weights[c])
        chars.append(ch)
        shares.append(weights[ch] / max(sum(weights.values()), 1e-9))
    plate = "".join(chars)
    best = max(same, key=lambda r: r.confidence)
    regions = [r.region for r in same if r.plate == plate and r.region] or [best.region]
    agreement = sum(shares) / len(shares) if shares else 0.0
    return PlateResult(plate, round(agreement * best.confidence, 4), regions[0], best.bbox)
