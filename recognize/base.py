"""Data types and abstract bases shared by the recognition pipeline.

Results are frozen dataclasses so they can be hashed, cached and shipped between Ray actors
without defensive copies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoundingBox:
    """Axis-aligned box in image pixels."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class PlateResult:
    """One plate read from one image."""

    plate: str  # normalised: A-Z and 0-9 only
    confidence: float  # 0..1
    region: str | None  # format family that matched ("eu", "uk", "us", "br"), None if none did
    bbox: BoundingBox


@dataclass(frozen=True)
class Candidate:
    """A detected text region: a 4-point quad (clockwise from top-left) and a detector score."""

    quad: np.ndarray  # float32, shape (4, 2)
    score: float

    @property
    def bbox(self) -> BoundingBox:
        x0, y0 = np.floor(self.quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.quad.max(axis=0)).astype(int)
        return BoundingBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


@dataclass(frozen=True)
class CharRead:
    """A recognised text line with per-character evidence.

    ``alternatives`` holds, for each output character, the probability of every character of
    ``charset``; format rules use it to resolve confusable characters (O/0, B/8, ...) by the
    model's own second choice rather than by a fixed substitution table alone.
    """

    text: str
    char_probs: tuple[float, ...]
    alternatives: np.ndarray  # shape (len(text), len(charset))
    charset: str
    # The line as read, separators kept ("-" for any, ":" for a colon): what tells a plate
    # from an on-screen clock or date whose digits alone would fit a format.
    shown: str = ""

    @property
    def confidence(self) -> float:
        return float(np.prod(self.char_probs)) ** (1.0 / max(len(self.char_probs), 1))


class BaseDetector(ABC):
    """Finds candidate text/plate regions in a BGR image."""

    @abstractmethod
    def detect(self, image_bgr: np.ndarray) -> list[Candidate]:
        """Return candidate quads with scores, in image coordinates."""


class BaseOCR(ABC):
    """Reads text from already-rectified line crops."""

    @abstractmethod
    def read_chars(self, crops: list[np.ndarray]) -> list[CharRead]:
        """Read every crop, keeping per-character probabilities."""

    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Read every crop as ``(text, confidence)``."""
        return [(r.text, r.confidence) for r in self.read_chars(crops)]
