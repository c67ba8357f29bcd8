"""Is a text line printed on a plate panel?  Evidence from the pixels around the characters.

A plate is a bounded panel: the background between its characters ends at the plate edge,
shortly outside the text.  Badges, lettering on paint, signs and watermarks mostly sit on a
background that runs on.  Dark panels (black, dark blue) break that rule: they are mounted on
dark bumpers or sit in shadow, so their edge is often invisible.  What still marks them is a
flat surround: just outside light characters on a dark panel there is nothing but panel,
whereas light text on a sign, a watermark or a busy scene has other structure next to it.
Light lettering on flat dark paint (a chrome badge on a black car) passes that test too, so
the interpretation only trusts it for plate-length reads (see ``interpret.FLAT_MIN_CHARS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recognize.detector import expand_quad, line_height, line_width, rectify

SPILL_MARGIN = 0.9  # window around the text in which the background is followed, in line heights
MIN_COVER = 0.3  # a background component must cover this share of the text box
FLAT_MARGIN = 0.5  # ring just outside the text that a dark panel fills, in line heights
FLAT_SPREAD = 0.3  # ring's 10-90 % grey spread, relative to the text contrast, still "flat"


@dataclass(frozen=True)
class PanelEvidence:
    dark_on_light: bool
    spill: float  # share of the window's border the text background reaches (0 = bounded panel)
    flat_surround: bool = False  # light text in a flat dark ring: a dark panel, or dark paint


def panel_evidence(gray: np.ndarray, quad: np.ndarray) -> PanelEvidence:
    """Polarity of a text line and how far its background runs on.

    The line is grown by ``SPILL_MARGIN`` line heights; for both polarities the largest
    component covering at least ``MIN_COVER`` of the text box is taken as background and its
    spill is the share of the grown window's border it reaches.  For light text whose
    background runs on, ``flat_surround`` says whether its ring of ``FLAT_MARGIN`` line heights
    is flat.
    """
    h, w = line_height(quad), line_width(quad)
    fx = min(0.6, SPILL_MARGIN * h / max(w, 1e-6))
    window = rectify(gray, expand_quad(quad, fx, SPILL_MARGIN))
    H, W = window.shape
    y0, x0 = int(H * SPILL_MARGIN / (1 + 2 * SPILL_MARGIN)), int(W * fx / (1 + 2 * fx))
    inner = window[y0 : H - y0, x0 : W - x0]
    if inner.size == 0:
        return PanelEvidence(False, 1.0)
    t, _ = cv2.threshold(inner, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    found: list[PanelEvidence] = []
    for light in (True, False):
        mask = ((window > t) if light else (window <= t)).astype(np.uint8)
        _, labels = cv2.connectedComponents(mask, connectivity=4)
        inside = labels[y0 : H - y0, x0 : W - x0].ravel()
        counts = np.bincount(inside[inside > 0], minlength=1)
        if counts.size < 2 or counts.max() < MIN_COVER * inner.size:
            continue
        main = labels == counts.argmax()
        found.append(PanelEvidence(light, float(np.concatenate([main[0], main[-1], main[:, 0],
                                                                main[:, -1]]).mean())))
    if not found:
        return PanelEvidence(False, 1.0)
    best = min(found, key=lambda e: e.spill)
    if not best.dark_on_light and best.spill > 0 and flat_surround(window, (y0, x0), t):
        return PanelEvidence(False, best.spill, flat_surround=True)
    return best


def flat_surround(window: np.ndarray, text_origin: tuple[int, int], thresh: float) -> bool:
    """Whether the ring just outside light text is all dark panel (grey spread small vs contrast)."""
    H, W = window.shape
    y0, x0 = text_origin
    text_h = (H - 2 * y0) or 1
    ry, rx = max(1, int(FLAT_MARGIN * text_h)), max(1, int(FLAT_MARGIN * text_h))
    top, left = max(0, y0 - ry), max(0, x0 - rx)
    bottom, right = min(H, H - y0 + ry), min(W, W - x0 + rx)
    grown = window[top:bottom, left:right].astype(np.float32)
    ring = np.ones(grown.shape, dtype=bool)
    ring[y0 - top : H - y0 - top, x0 - left : W - x0 - left] = False
    inner = window[y0 : H - y0, x0 : W - x0]
    text, panel = inner[inner > thresh], inner[inner <= thresh]
    if not ring.any() or text.size == 0 or panel.size == 0:
        return False
    contrast = float(np.median(text)) - float(np.median(panel))
    low, high = np.percentile(grown[ring], [10, 90])
    return contrast > 0 and (high - low) <= FLAT_SPREAD * contrast
