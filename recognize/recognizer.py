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
from recognize.detector import DBDetector
from recognize.formats import FormatMatcher
from recognize.ocr import CTCRecognizer


@dataclass(frozen=True)
class Preset:
    """Model choice and detection scale; ``fast`` trades accuracy on small plates for speed."""

    det_model: str
    det_limit_side: int
    rec_model: str


PRESETS: dict[str, Preset] = {
    "fast": Preset("v6-tiny", 640, "v6-small"),
    "accurate": Preset("v6-small", 960, "v6-small"),
}

MIN_CHARS, MAX_CHARS = 4, 8
TRIM_PENALTY = 0.95  # per character dropped from the ends (country band, frame edge, sticker)
UNMATCHED_FACTOR = 0.8  # reads that fit no format (vanity plates) must be that much surer
MIN_TEXT_HEIGHT = 8  # px; smaller text cannot be read reliably at 48 px model height


@dataclass(frozen=True)
class Interpretation:
    plate: str
    confidence: float
    region: str | None


def line_height(quad: np.ndarray) -> float:
    return float(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))


def line_width(quad: np.ndarray) -> float:
    return float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))


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
    from recognize.detector import order_quad

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


def rectify(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-warp the quad to an upright rectangle."""
    w = max(int(round(line_width(quad))), 1)
    h = max(int(round(line_height(quad))), 1)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def slice_read(read: CharRead, start: int, stop: int) -> CharRead:
    return CharRead(read.text[start:stop], read.char_probs[start:stop],
                    read.alternatives[start:stop], read.charset)


def interpret(read: CharRead, matcher: FormatMatcher) -> Interpretation | None:
    """Best plate reading of an OCR line, allowing up to 2 leading and 1 trailing extra chars."""
    best: Interpretation | None = None
    n = len(read.text)
    if MIN_CHARS <= n <= MAX_CHARS:
        best = Interpretation(read.text, read.confidence * UNMATCHED_FACTOR, None)
    for lead in range(3):
        for tail in range(2):
            if not MIN_CHARS <= n - lead - tail <= MAX_CHARS:
                continue
            m = matcher.match(slice_read(read, lead, n - tail))
            if m is None:
                continue
            conf = m.score * TRIM_PENALTY ** (lead + tail)
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
        found: list[PlateResult] = []
        for cand, read in zip(cands, reads):
            interp = interpret(read, self.matcher)
            if interp is not None and interp.confidence >= self.min_confidence:
                found.append(PlateResult(interp.plate, round(interp.confidence, 4), interp.region,
                                         cand.bbox))
        return select(found)

    def read_batch(self, images: list[np.ndarray]) -> list[list[PlateResult]]:
        return [self.read(im) for im in images]


def select(results: list[PlateResult]) -> list[PlateResult]:
    """Greedy non-maximum suppression: one read per plate location, the most confident."""
    kept: list[PlateResult] = []
    for r in sorted(results, key=lambda r: -r.confidence):
        if not any(overlaps(r.bbox, k.bbox) for k in kept):
            kept.append(r)
    return kept
