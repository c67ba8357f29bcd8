"""Plate recognition: text detection -> plate-shaped candidates -> OCR -> format interpretation.

The detector is a general text detector, so "is this a plate?" is decided late, from the
evidence that generalises across countries: line geometry and whether the text reads as a
plate of a configured region with confident characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recognize.base import BoundingBox, Candidate, CharRead, PlateResult
from recognize.detector import (DBDetector, background_spill, line_height, line_width,
                                order_quad, rectify)
from recognize.formats import FormatMatcher
from recognize.ocr import CTCRecognizer


@dataclass(frozen=True)
class Preset:
    """Model choice and detection scale; ``fast`` trades accuracy on small plates for speed."""

    det_model: str
    det_limit_side: int
    rec_model: str


PRESETS: dict[str, Preset] = {
    "fast": Preset("v6-tiny", 640, "v6-tiny"),
    "accurate": Preset("v6-small", 960, "v6-small"),
}

MIN_CHARS, MAX_CHARS = 4, 8
TRIM_PENALTY = 0.6  # per confidently read character dropped from the ends (band, screw, sticker)
SPILL_WEIGHT = 0.6  # confidence lost by text whose background runs on (not a bounded plate panel)
UNMATCHED_FACTOR = 0.6  # reads that fit no format (vanity plates) lose to a 1-substitution match...
VANITY_MIN_CHAR = 0.8  # ...need every character read at least this surely...
VANITY_MIN_CHARS = 5  # ...this many characters...
VANITY_MAX_SPILL = 0.1  # ...and sit on a clearly bounded, light panel
MIN_TEXT_HEIGHT = 8  # px; smaller text cannot be read reliably at 48 px model height


@dataclass(frozen=True)
class Interpretation:
    plate: str
    confidence: float
    region: str | None


def same_line(a: Candidate, b: Candidate) -> bool:
    """Whether ``b`` continues the text line of ``a`` to the right (plates split at spaces/emblems)."""
    ha, hb = line_height(a.quad), line_height(b.quad)
    if not 0.7 < ha / max(hb, 1e-6) < 1.0 / 0.7:
        return False
    ca, cb = a.quad.mean(axis=0), b.quad.mean(axis=0)
    gap = b.quad[:, 0].min() - a.quad[:, 0].max()
    h = max(ha, hb)
    return abs(ca[1] - cb[1]) < 0.4 * h and -0.3 * h < gap < 1.2 * h


def merge_quads(quads: list[np.ndarray]) -> np.ndarray:
    return order_quad(cv2.boxPoints(cv2.minAreaRect(np.concatenate(quads).astype(np.float32))))


def line_candidates(cands: list[Candidate], max_parts: int = 3) -> list[Candidate]:
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


def plausible(c: Candidate) -> bool:
    """Geometry a plate's character line can have (any country): tall enough, wide, not a paragraph."""
    h, w = line_height(c.quad), line_width(c.quad)
    return h >= MIN_TEXT_HEIGHT and 1.5 <= w / max(h, 1e-6) <= 12.0


def slice_read(read: CharRead, start: int, stop: int) -> CharRead:
    return CharRead(read.text[start:stop], read.char_probs[start:stop],
                    read.alternatives[start:stop], read.charset)


def interpret(read: CharRead, matcher: FormatMatcher, *, dark_on_light: bool,
              spill: float) -> Interpretation | None:
    """Best plate reading of an OCR line, or None if it does not look like a plate.

    Up to 2 leading and 1 trailing characters may be dropped (country band, frame screws,
    stickers) at a cost.  Lines that fit no format are only kept as vanity plates when the
    read and the plate-panel evidence are both strong.
    """
    n = len(read.text)
    best: Interpretation | None = None
    if (VANITY_MIN_CHARS <= n <= MAX_CHARS and min(read.char_probs) >= VANITY_MIN_CHAR
            and dark_on_light and spill <= VANITY_MAX_SPILL):
        best = Interpretation(read.text, read.confidence * UNMATCHED_FACTOR, None)
    if not any(c.isdigit() for c in read.text):
        # Plates mix letters and digits; all-letter words (brands, signs) only become a plate
        # through a forced O->0 or S->5, so they are judged as vanity plates instead.
        return best
    for lead in range(3):
        for tail in range(2):
            if not MIN_CHARS <= n - lead - tail <= MAX_CHARS:
                continue
            m = matcher.match(slice_read(read, lead, n - tail))
            if m is None:
                continue
            dropped = read.char_probs[:lead] + read.char_probs[n - tail :]
            trim = float(np.prod([1.0 - (1.0 - TRIM_PENALTY) * p for p in dropped]))
            conf = m.score * trim * (1.0 - SPILL_WEIGHT * spill)
            if best is None or conf > best.confidence:
                best = Interpretation(m.plate, conf, m.region)
    return best


def overlaps(a: BoundingBox, b: BoundingBox, thresh: float = 0.3) -> bool:
    """Intersection over the smaller box: a merged line contains its parts."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy > thresh * min(a.w * a.h, b.w * b.h)


class Recognizer:
    """Reads licence plates from BGR images."""

    def __init__(self, *, preset: str = "accurate", backend: str = "onnx-cpu",
                 regions: tuple[str, ...] = ("eu", "uk", "us", "br"), min_confidence: float = 0.5,
                 threads: int = 0) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        self.detector = DBDetector(p.det_model, backend=backend, threads=threads,
                                   limit_side=p.det_limit_side)
        self.ocr = CTCRecognizer(p.rec_model, backend=backend, threads=threads)
        self.matcher = FormatMatcher(regions)
        self.min_confidence = min_confidence

    def read(self, image_bgr: np.ndarray) -> list[PlateResult]:
        cands = [c for c in line_candidates(self.detector.detect(image_bgr)) if plausible(c)]
        if not cands:
            return []
        reads = self.ocr.read_chars([rectify(image_bgr, c.quad) for c in cands])
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        found: list[PlateResult] = []
        for cand, read in zip(cands, reads):
            if len(read.text) < MIN_CHARS:
                continue
            light, spill = background_spill(gray, cand.quad)
            interp = interpret(read, self.matcher, dark_on_light=light, spill=spill)
            if interp is not None and interp.confidence >= self.min_confidence:
                found.append(PlateResult(interp.plate, round(interp.confidence, 4), interp.region,
                                         cand.bbox))
        return select(found)

    def read_batch(self, images: list[np.ndarray]) -> list[list[PlateResult]]:
        return [self.read(im) for im in images]


def near_below_or_above(a: BoundingBox, b: BoundingBox) -> bool:
    """Whether ``a`` is text stacked on the plate ``b`` (dealer frame, state name, slogan)."""
    x_overlap = min(a.x + a.w, b.x + b.w) - max(a.x, b.x) > 0
    gap = max(a.y - (b.y + b.h), b.y - (a.y + a.h))
    return x_overlap and gap < 1.5 * b.h


def select(results: list[PlateResult]) -> list[PlateResult]:
    """Greedy non-maximum suppression: one read per plate, the most confident.

    Reads that fit no format are also dropped when stacked on a format-matching plate read.
    """
    kept: list[PlateResult] = []
    for r in sorted(results, key=lambda r: -r.confidence):
        if any(overlaps(r.bbox, k.bbox) for k in kept):
            continue
        if r.region is None and any(k.region and near_below_or_above(r.bbox, k.bbox) for k in kept):
            continue
        kept.append(r)
    return kept
