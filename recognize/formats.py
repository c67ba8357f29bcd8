"""Region-aware plate formats and confusable-character resolution.

A format is a string of character classes: ``L`` letter, ``N`` digit, ``A`` either, each
optionally followed by a repeat count ``{m}`` or ``{m,n}`` (e.g. German ``L{2,5}N{1,4}``).
Formats are expanded to fixed-length class strings once, so matching a read is a dictionary
lookup by length plus one pass per candidate format.

Confusable characters (O/0, I/1, B/8, ...) are resolved only where a format position demands
the other class, and then by the OCR model's own probability for the other character, with a
fixed look-alike table as a fallback for when the model is confidently wrong: it lifts a
look-alike the model sees at all, never one the model rules out (see :func:`look_alike_prob`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import product

import numpy as np

from recognize.base import CharRead

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    # Common national formats of EU/EEA countries, separators and country band removed.
    "eu": (
        "L{2,5}N{1,4}",  # DE (district + letters + digits), also HU/LT/FI/SE/SI style LLLNNN
        "LLNNNLL", "LLNNNNLL", "LLNNNNL", "LLNNNL",  # FR, IT, SK, HR
        "LNNNNLL", "LLNNNNLL",  # BG
        "NLANNNN",  # CZ
        "LLNNNNL", "LLNLNNN", "LLNLLNN", "LLLNNLL", "LLLNNNL", "LLLNLNN", "LLLNLLN",  # PL
        "NNNNLLL",  # ES
        "NNLLLN", "NLLLNN", "LLNNNL", "LNNNLL", "LLLNNL", "NLLNNN", "LLNNLL", "NNLLNN",  # NL, PT
        "NLLLNNN",  # BE
        "LLLNNL", "LNNLLL", "LLNNLLL",  # SE, RO
        "L{1,2}N{3,5}L{1,2}",  # AT
        "LLN{1,6}",  # CH, NO, DK
        "NNNL{1,2}N{1,6}",  # IE
    ),
    "uk": ("LLNNLLL", "LN{1,3}LLL", "LLLN{1,3}L", "L{1,3}N{1,4}", "N{1,4}L{1,3}"),
    "us": (
        "LLLNNNN", "LLLNNN", "NLLLNNN", "NNNLLL", "NNNLLLL", "LLNNNNN", "LNNLLL", "LLLLNNN",
        "NLLNNN", "NNLLLN", "NNNNLL", "LLNNLL", "NNNNNN", "NNNNNNN", "LLNNNLL",
    ),
    "br": ("LLLNLNN", "LLLNNNN"),  # Mercosur, pre-Mercosur
    # Any plate of any country: 4-7 letters or digits (a digit is required by the interpretation).
    # It is the fallback for cameras abroad, vanity and new-series plates, and regions without
    # formats; it forces no character to a class, and wins only where a format needs a
    # substitution that the model itself does not back (see GENERIC_WEIGHT).
    "any": ("A{4,7}",),
}

# A reading that fits only the generic family keeps this share of its confidence: a national
# format's structure is evidence of its own, so an O->0 or I->1 change the model half-backs
# still wins, while a look-alike forced on a surely read character (the table below) does not.
GENERIC_WEIGHT = 0.88
GENERIC_REGION = "any"  # the name of the generic family, whose matches carry GENERIC_WEIGHT

# Look-alike characters by class, used when the model gives the other class little mass, with
# the share of the read character's probability a substitution keeps: O/0 and I/1 are drawn
# identically in many plate fonts (O/0 in nearly all, so it costs least), B/8, S/5, Z/2, G/6
# are close, the rest are a stretch.  The table lifts only a look-alike the model gives at
# least MIN_CHAR_PROB (see look_alike_prob).
DIGIT_FOR_LETTER = {"O": ("0", 0.95), "D": ("0", 0.7), "Q": ("0", 0.6), "I": ("1", 0.9),
                    "Z": ("2", 0.7), "B": ("8", 0.7), "S": ("5", 0.7), "G": ("6", 0.7),
                    "T": ("7", 0.5), "A": ("4", 0.5)}
LETTER_FOR_DIGIT = {"0": ("O", 0.95), "1": ("I", 0.9), "2": ("Z", 0.7), "8": ("B", 0.7),
                    "5": ("S", 0.7), "6": ("G", 0.7), "7": ("T", 0.5), "4": ("A", 0.5)}
MIN_CHAR_PROB = 0.05  # below this a position does not fit the class the format demands

_TOKEN = re.compile(r"([LNA])(?:\{(\d+)(?:,(\d+))?\})?")


def expand_pattern(pattern: str) -> list[str]:
    """All fixed-length class strings of ``pattern`` (e.g. ``"LN{1,2}"`` -> ``["LN", "LNN"]``)."""
    pos, parts = 0, []
    for m in _TOKEN.finditer(pattern):
        if m.start() != pos:
            raise ValueError(f"bad plate format {pattern!r} at position {pos}")
        lo = int(m.group(2) or 1)
        hi = int(m.group(3) or lo)
        if lo > hi:
            raise ValueError(f"bad repeat {{{lo},{hi}}} in plate format {pattern!r}")
        parts.append([m.group(1) * n for n in range(lo, hi + 1)])
        pos = m.end()
    if pos != len(pattern) or not parts:
        raise ValueError(f"bad plate format {pattern!r} at position {pos}")
    return sorted({"".join(p) for p in product(*parts)})


@dataclass(frozen=True)
class FormatMatch:
    plate: str
    score: float  # 0..1: read confidence times the cost of forced substitutions
    region: str | None
    pattern: str | None


CLASS_INDEX = {"L": 0, "N": 1, "A": 2}


class FormatMatcher:
    """Matches reads against the formats of the configured regions, in preference order."""

    def __init__(self, regions: Iterable[str] = ("eu", "uk", "us", "br", "any"),
                 formats: Mapping[str, Iterable[str]] | None = None) -> None:
        table = dict(DEFAULT_FORMATS if formats is None else formats)
        grouped: dict[int, list[tuple[str, str]]] = {}
        for region in regions:
            if region not in table:
                raise ValueError(f"no plate formats for region {region!r}; known: {', '.join(table)}")
            for pattern in table[region]:
                for classes in expand_pattern(pattern):
                    if (region, classes) not in grouped.get(len(classes), []):
                        grouped.setdefault(len(classes), []).append((region, classes))
        # Per length: labels, a (patterns, length) matrix of class indices for vectorised
        # scoring, and each pattern's weight (the generic family's is GENERIC_WEIGHT).
        self.by_length = {
            n: (entries, np.array([[CLASS_INDEX[c] for c in cl] for _, cl in entries]),
                np.array([GENERIC_WEIGHT if r == GENERIC_REGION else 1.0 for r, _ in entries]))
            for n, entries in grouped.items()
        }
        self.longest = max(self.by_length, default=0)  # no longer reading can be a plate

    def match(self, read: CharRead) -> FormatMatch | None:
        """Best format reading of ``read``; ties go to the earlier region, then format.

        The score is the geometric mean of the model's top probabilities times, for every
        position the format forced to the other class, the chosen character's share of the
        top probability.  Substitutions therefore cost in full (not averaged away), which
        keeps words such as "DAEWOO" from becoming a confident "DAEWO0".
        """
        n = len(read.text)
        if n not in self.by_length:
            return None
        entries, classes, weights = self.by_length[n]
        chars, probs = class_options(read)
        picked = probs[classes, np.arange(n)]
        valid = (picked >= MIN_CHAR_PROB).all(axis=1)
        if not valid.any():
            return None
        top = probs[2]
        base = float(np.exp(np.log(np.maximum(top, 1e-12)).mean()))
        penalty = np.prod(np.minimum(picked / np.maximum(top, 1e-12), 1.0), axis=1)
        scores = np.where(valid, base * penalty * weights, -1.0)
        best = int(np.argmax(scores))
        plate = "".join(chars[c][i] for i, c in enumerate(classes[best]))
        region, pattern = entries[best]
        return FormatMatch(plate, float(scores[best]), region, pattern)


def class_options(read: CharRead) -> tuple[list[list[str]], np.ndarray]:
    """Best letter, best digit and the read character at every position, with probabilities."""
    options = [[best_of_class(read, i, cls) for i in range(len(read.text))] for cls in "LNA"]
    chars = [[ch for ch, _ in row] for row in options]
    probs = np.array([[p for _, p in row] for row in options], dtype=np.float64)
    return chars, probs


def best_of_class(read: CharRead, i: int, cls: str) -> tuple[str, float]:
    """Most probable character of class ``cls`` ("L", "N", "A") at position ``i``."""
    ch, p = read.text[i], read.char_probs[i]
    if cls == "A" or (cls == "L") == (ch in LETTERS):
        return ch, p
    allowed = LETTERS if cls == "L" else DIGITS
    offset = read.charset.index(allowed[0])
    alts = read.alternatives[i][offset : offset + len(allowed)]
    j = int(np.argmax(alts))
    table = LETTER_FOR_DIGIT if cls == "L" else DIGIT_FOR_LETTER
    if ch in table and (q := look_alike_prob(read, i, table[ch][0])) > alts[j]:
        return table[ch][0], q
    return allowed[j], float(alts[j])


def look_alike_prob(read: CharRead, i: int, ch: str) -> float:
    """The model's probability for ``ch`` at position ``i``, lifted by the look-alike table.

    A font that draws I like 1 can make the model confidently wrong, so the table's share of
    the read character's probability stands in for the model's own figure; but only where the
    model gives ``ch`` at least ``MIN_CHAR_PROB``.  Where it gives the look-alike (almost)
    nothing, the evidence is that the font tells the two apart (a US 1 with its flag and foot
    read at 1.0 and I at 0.000), and a format must not force the other character on it: the
    reading stays as read, in a format that fits it or in the generic family.
    """
    alt = float(read.alternatives[i][read.charset.index(ch)])
    read_ch, p = read.text[i], read.char_probs[i]
    pair = DIGIT_FOR_LETTER.get(read_ch) or LETTER_FOR_DIGIT.get(read_ch)
    if pair is not None and pair[0] == ch and alt >= MIN_CHAR_PROB:
        return max(alt, p * pair[1])
    return alt
