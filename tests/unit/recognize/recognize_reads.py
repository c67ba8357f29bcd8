"""Hand-made OCR reads for the recognition unit tests."""

from __future__ import annotations

import numpy as np

from recognize.base import CharRead
from recognize.ocr import PLATE_CHARSET


def make_read(text: str, probs: dict[int, dict[str, float]] | None = None, shown: str = "") -> CharRead:
    """A confident read of ``text``; ``probs`` overrides a position's distribution; ``shown`` is
    the line as read, separators included."""
    alts = np.zeros((len(text), len(PLATE_CHARSET)), dtype=np.float32)
    for i, ch in enumerate(text):
        for c, p in (probs or {}).get(i, {ch: 0.99}).items():
            alts[i, PLATE_CHARSET.index(c)] = p
    char_probs = tuple(float(alts[i, PLATE_CHARSET.index(ch)]) for i, ch in enumerate(text))
    return CharRead(text, char_probs, alts, PLATE_CHARSET, shown)
