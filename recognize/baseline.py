"""The plain whole-image baseline that Gantry's plate logic must beat on every region.

The same shipped models, with none of Gantry's plate logic: the text detector runs once on the
whole image at PaddleOCR's usual scale (longest side 960 px), every line it finds is read, and
every reading is kept as a plate.  Its exact rate is an upper bound on what "just run the OCR"
gives; if the plate logic loses to it on some region, that logic is fitted to another region.
Its false reads are not comparable (it keeps every line by design) and are not the point.
"""

from __future__ import annotations

import numpy as np

from recognize.base import PlateResult
from recognize.detector import DBDetector, rectify
from recognize.recognizer import Recognizer, in_parallel

BASELINE_LIMIT_SIDE = 960


class WholeImageBaseline:
    """Reads every text line of an image with the recogniser's own models and cores."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self.detector = DBDetector(recognizer.det_model, backend=recognizer.backend, threads=1,
                                   limit_side=BASELINE_LIMIT_SIDE)

    def read_batch(self, images: list[np.ndarray]) -> list[list[PlateResult]]:
        return in_parallel(self.recognizer.pool, self.recognizer.workers, self.read_together, images)

    def read_together(self, images: list[np.ndarray]) -> list[list[PlateResult]]:
        lines = [self.detector.detect(image) for image in images]
        crops = [rectify(image, c.quad) for image, found in zip(images, lines, strict=True) for c in found]
        reads = iter(self.recognizer.ocr.read_chars(crops) if crops else [])
        out: list[list[PlateResult]] = []
        for found in lines:
            results = [PlateResult(r.text, round(r.confidence, 4), None, c.bbox)
                       for c, r in zip(found, [next(reads) for _ in found], strict=True) if r.text]
            out.append(results)
        return out
