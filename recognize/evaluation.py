"""Accuracy and speed evaluation on a folder in the OpenALPR benchmark layout.

Each ``NAME.txt`` holds lines ``NAME.jpg<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE``.  The headline
metric merges letter O and digit 0 because many plate fonts (and annotators) do not tell them
apart; the strict rate is reported next to it so the allowance stays visible.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gantry.events import normalise_plate
from recognize.base import BoundingBox, PlateResult
from recognize.views import seen_as

FIELDS = ("image", "x", "y", "w", "h", "plate")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class AnnotationError(ValueError):
    """A benchmark annotation that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Sample:
    image: Path
    plates: tuple[str, ...]
    boxes: tuple[BoundingBox, ...]


def parse_annotation(path: Path) -> Sample:
    """Parse one annotation file; every problem is reported as ``file:line: field: reason``."""
    lines = [(n, ln) for n, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ln.strip()]
    if not lines:
        raise AnnotationError(f"{path}: empty annotation file, expected {'<TAB>'.join(FIELDS)}")
    image: Path | None = None
    plates: list[str] = []
    boxes: list[BoundingBox] = []
    for lineno, line in lines:
        parts = line.rstrip("\r\n").split("\t")
        where = f"{path}:{lineno}"
        if len(parts) < len(FIELDS):
            raise AnnotationError(f"{where}: field {FIELDS[len(parts)]!r} missing, expected "
                                  f"{len(FIELDS)} tab-separated fields, got {len(parts)}")
        img = path.parent / parts[0].strip()
        if image is not None and img != image:
            raise AnnotationError(f"{where}: field 'image': {parts[0]!r} differs from {image.name!r}")
        if not img.is_file():
            raise AnnotationError(f"{where}: field 'image': file {img} not found")
        try:
            x, y, w, h = (int(float(parts[i])) for i in range(1, 5))
        except ValueError:
            bad = next(i for i in range(1, 5) if not _is_number(parts[i]))
            raise AnnotationError(f"{where}: field {FIELDS[bad]!r}: {parts[bad]!r} is not a number") from None
        try:
            plate = normalise_plate(parts[5])
        except ValueError as exc:
            raise AnnotationError(f"{where}: field 'plate': {parts[5]!r}: {exc}") from None
        if not plate:
            raise AnnotationError(f"{where}: field 'plate': {parts[5]!r} has no A-Z/0-9 characters")
        image = img
        plates.append(plate)
        boxes.append(BoundingBox(x, y, w, h))
    assert image is not None
    return Sample(image, tuple(plates), tuple(boxes))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Dataset:
    samples: list[Sample]
    skipped: list[Path]  # images with no annotation file: a dataset quirk, not a reason to stop


def load_dataset(folder: Path) -> Dataset:
    """All annotated samples of ``folder``, sorted by file name, and the images without one."""
    if not folder.is_dir():
        raise AnnotationError(f"{folder}: not a directory")
    samples = [parse_annotation(p) for p in sorted(folder.glob("*.txt"))]
    if not samples:
        raise AnnotationError(f"{folder}: no NAME.txt annotation files found")
    annotated = {s.image.name for s in samples}
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return Dataset(samples, [img for img in images if img.name not in annotated])


def canonical(plate: str, merge_o0: bool) -> str:
    return plate.replace("O", "0") if merge_o0 else plate


@dataclass
class ImageOutcome:
    image: str
    expected: tuple[str, ...]
    read: list[PlateResult]
    latency_ms: float
    cause: str | None = None  # why a plate was missed, when the evaluation was asked to explain

    def found(self, merge_o0: bool) -> bool:
        got = {canonical(r.plate, merge_o0) for r in self.read}
        return all(canonical(p, merge_o0) in got for p in self.expected)

    def false_reads(self) -> list[PlateResult]:
        want = {canonical(p, True) for p in self.expected}
        return [r for r in self.read if canonical(r.plate, True) not in want]


@dataclass
class Report:
    outcomes: list[ImageOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, object]:
        n = len(self.outcomes)
        lat = [o.latency_ms for o in self.outcomes]
        return {
            "images": n,
            "exact_rate": round(sum(o.found(True) for o in self.outcomes) / n, 4),
            "strict_exact_rate": round(sum(o.found(False) for o in self.outcomes) / n, 4),
            "false_reads_per_image": round(sum(len(o.false_reads()) for o in self.outcomes) / n, 4),
            "images_per_s": round(n / self.wall_s, 2),
            **({"miss_causes": dict(Counter(causes))} if (causes := [o.cause for o in self.outcomes if o.cause]) else {}),
            "latency_ms_p50": round(statistics.median(lat), 1),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
        }

    def misses(self) -> list[dict[str, object]]:
        """Images with a missed plate or a false read, expected vs read, for error analysis."""
        return [
            {"image": o.image, "expected": list(o.expected), "found": o.found(True), "cause": o.cause,
             "read": [{"plate": r.plate, "confidence": r.confidence, "region": r.region}
                      for r in o.read],
             "false_reads": [r.plate for r in o.false_reads()]}
            for o in self.outcomes if not o.found(True) or o.false_reads()
        ]


def read_sample(sample: Sample, view: str | None = None) -> tuple[np.ndarray, tuple[BoundingBox, ...]]:
    """The sample's image and plate boxes, as ``view`` shows them (:mod:`recognize.views`)."""
    image = cv2.imread(str(sample.image))
    if image is None:
        raise AnnotationError(f"{sample.image}: cannot decode image")
    return seen_as(view, image, sample.boxes, sample.image.name)


def evaluate(read_batch: Callable[[list[np.ndarray]], list[list[PlateResult]]],
             samples: list[Sample],
             progress: Callable[[Iterable[Sample]], Iterable[Sample]] = lambda s: s,
             warmup: int = 2, batch: int = 1, view: str | None = None) -> Report:
    """Run ``read_batch`` on the samples, ``batch`` images per call, as the recognizer pool does.

    The wall clock starts after ``warmup`` untimed images.  Throughput includes image decoding
    (and making the ``view``); an image's latency is the duration of the call that read it (so it
    grows with ``batch``).
    """
    if warmup:
        read_batch([read_sample(s, view)[0] for s in samples[:warmup]])
    report = Report()
    pending: list[tuple[Sample, np.ndarray]] = []

    def flush() -> None:
        t0 = time.perf_counter()
        results = read_batch([image for _, image in pending])
        latency = (time.perf_counter() - t0) * 1000.0
        report.outcomes += [ImageOutcome(s.image.name, s.plates, r, latency)
                            for (s, _), r in zip(pending, results, strict=True)]
        pending.clear()

    start = time.perf_counter()
    for s in progress(samples):
        pending.append((s, read_sample(s, view)[0]))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    report.wall_s = time.perf_counter() - start
    return report


def baseline_only(report: Report, baseline: Report) -> list[str]:
    """Images whose plates the whole-image baseline reads and Gantry misses.

    The exact rates can tie while the two miss different images; logic that loses images the
    plain OCR reads is fitted to other plates, however many it gains elsewhere.
    """
    plain = {o.image: o.found(True) for o in baseline.outcomes}
    return [o.image for o in report.outcomes if plain.get(o.image) and not o.found(True)]


def explain_misses(report: Report, samples: list[Sample],
                   cause: Callable[[np.ndarray, BoundingBox, str], str], view: str | None = None) -> None:
    """Give every image with a missed plate the cause of its first miss (after timing), in the
    ``view`` it was read in."""
    by_name = {s.image.name: s for s in samples}
    for outcome in report.outcomes:
        if outcome.found(True):
            continue
        sample = by_name[outcome.image]
        got = {canonical(r.plate, True) for r in outcome.read}
        image, boxes = read_sample(sample, view)
        plate, box = next((p, b) for p, b in zip(sample.plates, boxes, strict=True) if canonical(p, True) not in got)
        outcome.cause = cause(image, box, plate)
