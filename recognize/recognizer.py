"""Plate recognition: text detection -> plate-shaped candidates -> OCR -> format interpretation.

The detector is a general text detector, so "is this a plate?" is decided late, from the
evidence that generalises across countries: line geometry and whether the text reads as a
plate of a configured region with confident characters.

Detection runs on a downscaled image (cost grows with pixels); when that loses detail, the
plate-like regions are detected again at full resolution (coarse to fine), so a plate that
was split or clipped at the coarse scale is read whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from gantry.config import RecognizeConfig
from recognize.base import BoundingBox, Candidate, CharRead, PlateResult
from recognize.candidates import line_candidates, merge_quads, plausible, select, stacked_rows
from recognize.detector import DBDetector, expand_quad, line_height, line_width, rectify
from recognize.formats import DEFAULT_FORMATS, FormatMatcher
from recognize.interpret import MIN_CHARS, Interpretation, best_interpretation
from recognize.ocr import CTCRecognizer, join_rows, with_second_opinion
from recognize.panel import PanelEvidence, panel_evidence


@dataclass(frozen=True)
class Preset:
    """Model choice and detection scales; ``fast`` trades accuracy on small plates for speed.

    Both use the v6-small models: the v6-tiny recogniser reads emblems and stickers as
    characters far more often, and the v6-tiny detector clips plate ends at coarse scales
    (see docs/benchmarks.md), so ``fast`` saves on detection scale instead.

    ``second_look_side``: an image in which the coarse scale read no sure plate (none at
    ``SECOND_LOOK_SURE``) is detected once more at this longest side.  Small plates (a 30 px
    plate in a 1280 px frame) vanish at the coarse scale, and only the frames that need it pay
    for the finer one.

    ``padded_variant`` also reads every line from a crop grown by ``PAD_HEIGHTS`` line heights
    at both ends (same recogniser batch): the detector's box often ends on the first or last
    character, and the recogniser then drops it (UF2VS for UF2V5S); a tight crop reads better
    where the plate edge or a screw sits right beside the characters.

    ``grey_variant`` also reads every line in grey: plate characters are one ink, so a coloured
    sticker, seal or emblem between the character groups fades in grey while the characters stay.

    ``second_opinion`` names a second recognition model that reads the crops of unsure lines
    only (:func:`unsure_line`); its evidence can back a look-alike the first model half-sees,
    never weaken what the first model reads (:func:`recognize.ocr.with_second_opinion`).
    """

    det_model: str
    det_limit_side: int
    rec_model: str
    grey_variant: bool
    padded_variant: bool = True
    second_look_side: int | None = None
    second_opinion: str | None = None


PRESETS: dict[str, Preset] = {
    "fast": Preset("v6-small", 640, "v6-small", grey_variant=False, second_look_side=960,
                   second_opinion="v5"),
    "accurate": Preset("v6-small", 960, "v6-small", grey_variant=True),
}

PAD_HEIGHTS = 0.3  # crop growth at each end of a line for the padded variant, in line heights
# A coarse read this sure (or at min_confidence, if that is higher) spares the image its second
# look.  A read below it is still emitted, but it is as likely a date stamp, a badge or a sign,
# read while the plate itself was too small for the coarse scale: a clearly read plate scores
# about 0.9 in a national format and up to 0.88 in the generic family.
SECOND_LOOK_SURE = 0.8
REFINE_MIN_SCALE = 1.5  # re-detect at full resolution when detection saw the image this downscaled
REFINE_FLOOR = 0.3  # plate-likeness a coarse read needs to be looked at again
REFINE_MAX_REGIONS = 3  # per image, the most plate-like coarse reads only
REFINE_MARGIN_X, REFINE_MARGIN_Y = 1.5, 0.6  # window around a coarse read, in its text heights


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    interpretation: Interpretation


def refine_window(box: BoundingBox, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Full-resolution window around a coarse read, wide enough for a missed district/band part."""
    mx, my = REFINE_MARGIN_X * box.h, REFINE_MARGIN_Y * box.h
    x0, y0 = max(0, int(box.x - mx)), max(0, int(box.y - my))
    x1 = min(shape[1], int(box.x + box.w + mx))
    y1 = min(shape[0], int(box.y + box.h + my))
    return x0, y0, x1, y1


def unsure_line(confidence: float) -> bool:
    """Whether a line's best reading asks the second-opinion recogniser.

    Only plate-like lines (``REFINE_FLOOR``, the same bar as a look at full resolution) that
    are not surely read (``SECOND_LOOK_SURE``, the same bar as a second look): a clearly read
    plate scores about 0.9, and below the floor a line is a sign or a badge either way, so the
    extra model call is spent on the lines where a look-alike or a split between the crops is
    still open (on the dev sets about one line per US frame, one per five EU frames).
    """
    return REFINE_FLOOR <= confidence < SECOND_LOOK_SURE


def wants_second_look(coarse: list[Scored], sure: float = SECOND_LOOK_SURE) -> bool:
    """Whether an image is detected again at the second-look scale: where no coarse read reaches
    ``sure``.

    An unsure coarse read is as often a date stamp or a badge beside a plate too small for the
    coarse scale as it is the plate, and it must not spare the finer look.  Frames smaller than
    the coarse scale (a near camera's, a cut-out) get it too, though the coarse scale already
    enlarges them: the detector's line box around a plate of an enlarged frame depends on the
    scale, and at the coarse one it can take in the plate's whole panel, which then hides the
    panel's edge from the plate evidence (TVG399 in a 337 px frame: a 88 px box read at 0.40 at
    640 px, a 78 px box read at 0.999 at 960 px).
    """
    return not any(s.interpretation.confidence >= sure for s in coarse)


T = TypeVar("T")


def in_parallel(pool: ThreadPoolExecutor | None, workers: int,
                read_together: Callable[[list[T]], list[list[PlateResult]]],
                items: list[T]) -> list[list[PlateResult]]:
    """``read_together`` over ``workers`` interleaved shares of ``items``; results in input order."""
    if pool is None or len(items) < 2:
        return read_together(items)
    shares = [items[i :: workers] for i in range(min(workers, len(items)))]
    results: list[list[PlateResult]] = [[] for _ in items]
    for i, share in enumerate(pool.map(read_together, shares)):
        results[i :: workers] = share
    return results


class Recognizer:
    """Reads licence plates from BGR images.

    ``threads`` is how many cores it may use (0: all).  They go to reading that many images
    of a batch at once, each model call on one core: the models are too small to split well
    over cores (the detector gains ~15 % from a second thread), and on a shared host a model
    call spread over busy cores waits for the slowest one.
    """

    def __init__(self, *, preset: str = "fast", backend: str = "onnx-cpu",
                 regions: tuple[str, ...] = ("eu", "uk", "us", "br", "any"), min_confidence: float = 0.5,
                 threads: int = 0, formats: Mapping[str, Iterable[str]] | None = None,
                 camera_regions: Mapping[str, Iterable[str]] | None = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        self.preset, self.backend, self.det_model = preset, backend, p.det_model
        self.detector = DBDetector(p.det_model, backend=backend, threads=1,
                                   limit_side=p.det_limit_side)
        self.ocr = CTCRecognizer(p.rec_model, backend=backend, threads=1)
        self.second = (CTCRecognizer(p.second_opinion, backend=backend, threads=1)
                       if p.second_opinion else None)
        table = DEFAULT_FORMATS | dict(formats or {})
        self.matcher = FormatMatcher(regions, table)
        # A city knows its cameras' countries: their formats alone, without the global list's
        # look-alike changes towards another country's format (K179658 read as KI79658).
        self.camera_matchers = {camera: FormatMatcher(tuple(r), table)
                                for camera, r in (camera_regions or {}).items()}
        self.min_confidence = min_confidence
        self.grey_variant, self.padded_variant = p.grey_variant, p.padded_variant
        self.second_look_side = p.second_look_side
        self.workers = threads or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(self.workers, "recognize") if self.workers > 1 else None

    @classmethod
    def configured(cls, settings: RecognizeConfig, *, preset: str | None = None, backend: str | None = None,
                   threads: int = 0, camera_regions: Mapping[str, Iterable[str]] | None = None) -> Recognizer:
        """The recogniser the ``recognize`` section describes (what the pool runs)."""
        return cls(preset=preset or settings.preset, backend=backend or settings.backend,
                   regions=tuple(settings.regions), min_confidence=settings.min_confidence,
                   formats=settings.formats, threads=threads, camera_regions=camera_regions)

    def read(self, image_bgr: np.ndarray, camera: str | None = None) -> list[PlateResult]:
        return self.read_batch([image_bgr], [camera])[0]

    def read_batch(self, images: list[np.ndarray],
                   cameras: Sequence[str | None] | None = None) -> list[list[PlateResult]]:
        """Read every image, up to ``threads`` images at a time; results in input order.

        ``cameras`` names each image's camera, whose configured regions then apply instead of
        the global ones.
        """
        matchers = [self.camera_matchers.get(c, self.matcher) for c in (cameras or [None] * len(images))]
        return in_parallel(self.pool, self.workers, self.read_together, list(zip(images, matchers, strict=True)))

    def read_together(self, batch: list[tuple[np.ndarray, FormatMatcher]]) -> list[list[PlateResult]]:
        """Read images on one core; all their line crops go through the OCR together."""
        coarse = self.look_again(batch, self.score([(im, m, self.candidates(im)) for im, m in batch]))
        refined = self.score([(im, m, self.refine(im, scored)) for (im, m), scored in zip(batch, coarse, strict=True)])
        return [
            select([PlateResult(s.interpretation.plate, round(s.interpretation.confidence, 4),
                                s.interpretation.region, s.candidate.bbox)
                    for s in first + second if s.interpretation.confidence >= self.min_confidence])
            for first, second in zip(coarse, refined, strict=True)
        ]

    def candidates(self, image: np.ndarray, offset: tuple[int, int] = (0, 0),
                   limit_side: int | None = None) -> list[Candidate]:
        """Plate-shaped text lines of ``image``, in the coordinates of the image it was cut from."""
        shift = np.array(offset, dtype=np.float32)
        found = [Candidate(c.quad + shift, c.score) for c in self.detector.detect(image, limit_side)]
        return [c for c in line_candidates(found) if plausible(c)]

    def look_again(self, batch: list[tuple[np.ndarray, FormatMatcher]],
                   coarse: list[list[Scored]]) -> list[list[Scored]]:
        """Coarse reads, plus those of a finer detection where the coarse one read no plate."""
        side = self.second_look_side
        if side is None:
            return coarse
        again = [i for i, ((image, _), scored) in enumerate(zip(batch, coarse, strict=True))
                 if wants_second_look(scored, max(SECOND_LOOK_SURE, self.min_confidence))]
        second = self.score([(batch[i][0], batch[i][1], self.candidates(batch[i][0], limit_side=side))
                             for i in again])
        out = list(coarse)
        for i, scored in zip(again, second, strict=True):
            out[i] = coarse[i] + scored
        return out

    def refine(self, image: np.ndarray, coarse: list[Scored]) -> list[Candidate]:
        """Lines found again at full resolution around the most plate-like coarse reads."""
        h, w = image.shape[:2]
        if max(h, w) < REFINE_MIN_SCALE * self.detector.limit_side:
            return []
        best = sorted((s for s in coarse if s.interpretation.confidence >= REFINE_FLOOR),
                      key=lambda s: -s.interpretation.confidence)
        out: list[Candidate] = []
        for s in best[:REFINE_MAX_REGIONS]:
            x0, y0, x1, y1 = refine_window(s.candidate.bbox, image.shape)
            window = image[y0:y1, x0:x1]
            out += self.candidates(window, (x0, y0), min(max(window.shape[:2]), self.detector.limit_side))
        return out

    def variants(self, image: np.ndarray, cand: Candidate) -> list[np.ndarray]:
        """Crops of one line that the OCR reads; the best plate reading among them counts."""
        crops = [rectify(image, cand.quad)]
        if self.padded_variant:
            grow = PAD_HEIGHTS * line_height(cand.quad) / max(line_width(cand.quad), 1e-6)
            crops.append(rectify(image, expand_quad(cand.quad, grow, 0.0)))
        if self.grey_variant:
            crops += [cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for c in crops]
        return crops

    def score(self, batch: list[tuple[np.ndarray, FormatMatcher, list[Candidate]]]) -> list[list[Scored]]:
        """OCR every candidate of every image in one call, and interpret each line as a plate.

        Lines left unsure (:func:`unsure_line`) are read once more by the second-opinion model,
        all in one more call, and interpreted again with its evidence.  Pairs of lines that may
        be the two rows of one plate (:func:`recognize.candidates.stacked_rows`) are
        interpreted once more as one line, from the reads of their rows.
        """
        grays = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image, _, _ in batch]
        lines = [(matcher, gray, c) for (_, matcher, cands), gray in zip(batch, grays, strict=True) for c in cands]
        crops = [self.variants(image, c) for image, _, cands in batch for c in cands]
        reads = read_lines(self.ocr, crops)
        panels = [panel_evidence(gray, c.quad) if any(len(r.text) >= MIN_CHARS for r in rs) else None
                  for (_, gray, c), rs in zip(lines, reads, strict=True)]
        best = [interpret_line(rs, matcher, panel)
                for rs, (matcher, _, _), panel in zip(reads, lines, panels, strict=True)]
        if self.second is not None:
            unsure = [i for i, b in enumerate(best) if b is not None and unsure_line(b.confidence)]
            for i, extra in zip(unsure, read_lines(self.second, [crops[i] for i in unsure]), strict=True):
                reads[i] = [with_second_opinion(r, x) for r, x in zip(reads[i], extra, strict=True)]
                best[i] = interpret_line(reads[i], lines[i][0], panels[i])
        out: list[list[Scored]] = []
        start = 0
        for (_, matcher, cands), gray in zip(batch, grays, strict=True):
            end = start + len(cands)
            out.append([Scored(c, b) for c, b in zip(cands, best[start:end], strict=True) if b is not None]
                       + two_line_plates(cands, reads[start:end], matcher, gray))
            start = end
        return out


def two_line_plates(cands: list[Candidate], reads: list[list[CharRead]], matcher: FormatMatcher,
                    gray: np.ndarray) -> list[Scored]:
    """Stacked pairs of an image's lines read as one plate: top row, then bottom row."""
    out = []
    for top, bottom in stacked_rows(cands):
        joined = [join_rows(t, b) for t, b in zip(reads[top], reads[bottom], strict=True)]
        if not any(len(r.text) >= MIN_CHARS for r in joined):
            continue
        plate = Candidate(merge_quads([cands[top].quad, cands[bottom].quad]),
                          min(cands[top].score, cands[bottom].score))
        found = interpret_line(joined, matcher, panel_evidence(gray, plate.quad))
        if found is not None:
            out.append(Scored(plate, found))
    return out


def read_lines(ocr: CTCRecognizer, crops: list[list[np.ndarray]]) -> list[list[CharRead]]:
    """The reads of every line's crops, all crops in one model call."""
    flat = [v for variants in crops for v in variants]
    reads = iter(ocr.read_chars(flat) if flat else [])
    return [[next(reads) for _ in variants] for variants in crops]


def interpret_line(reads: list[CharRead], matcher: FormatMatcher,
                   panel: PanelEvidence | None) -> Interpretation | None:
    """Best plate reading of one line's reads; None where no read is plate-long (no panel)."""
    if panel is None:
        return None
    return best_interpretation(reads, matcher, spill=panel.spill, dark_on_light=panel.dark_on_light,
                               flat_surround=panel.flat_surround)
