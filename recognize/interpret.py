"""From an OCR line to a plate reading: which characters belong to the plate, and which format.

A detected text line often carries more than the plate's characters: the country band or a
frame screw at the ends, an inspection sticker, seal or coat of arms between the character
groups (CZ, SK, DE, HR plates and US plates with a state emblem all have one).  The OCR reads
such marks as a character, usually with low confidence.  Every way of dropping up to two
leading, one trailing and one inner character is therefore tried against the formats, each
drop costing in proportion to how surely the dropped character was read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from recognize.base import CharRead
from recognize.formats import GENERIC_REGION, GENERIC_WEIGHT, MIN_CHAR_PROB, FormatMatcher, look_alike_prob

MIN_CHARS = 4
VANITY_MAX_CHARS = 8  # the longest reading taken as a vanity plate (no format)
MAX_LEAD_DROP, MAX_TAIL_DROP, MAX_INNER_DROP = 2, 1, 1
LEAD_DROP_PENALTY = 0.6  # confidence kept when dropping a surely read leading character (band)...
TAIL_DROP_PENALTY = 0.5  # ...trailing one (screw, frame edge): less often read as a letter...
INNER_DROP_PENALTY = 0.3  # ...or inner one: bands and screws are read surely, stickers are not
SPILL_WEIGHT = 0.6  # confidence lost by text whose background runs on (not a bounded plate panel)
FLAT_MIN_CHARS = 6  # plate-length reads on a flat dark surround count as on a bounded panel
UNMATCHED_FACTOR = 0.6  # reads that fit no format (vanity plates) lose to a 1-substitution match...
VANITY_MIN_CHAR = 0.8  # ...need every character read at least this surely...
VANITY_MIN_CHARS = 5  # ...this many characters...
VANITY_MAX_SPILL = 0.1  # ...and sit on a clearly bounded, light panel


# A video frame's on-screen clock and date (the camera's overlay, in any country): a time of
# day standing alone, hours, minutes and seconds (even cut off by the crop: 2012:02:4), or a
# four-digit year beside a month and a day.  One colon among a plate's characters is a seal
# or sticker between its groups (1T4:3213), not a clock.
ON_SCREEN_TIME = re.compile(
    r"(?<![A-Z0-9])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?![A-Z0-9])"
    r"|\d:\d\d:\d"
    r"|(?:19|20)\d\d-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?<!\d)(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|1[0-2])-(?:19|20)\d\d"
)


def on_screen_time(read: CharRead) -> bool:
    """Whether a line reads as a clock or a date (:data:`ON_SCREEN_TIME`), not as a plate.

    Frames from video carry the camera's time overlay; its digits alone fit all-digit formats
    and the generic family (06:40:28 as 064028), and a clearly rendered overlay reads surely.
    """
    return ON_SCREEN_TIME.search(read.shown) is not None


@dataclass(frozen=True)
class Interpretation:
    plate: str
    confidence: float
    region: str | None


def subset_read(read: CharRead, keep: list[int]) -> CharRead:
    """The read restricted to the characters at ``keep`` (in order)."""
    return CharRead("".join(read.text[i] for i in keep), tuple(read.char_probs[i] for i in keep),
                    read.alternatives[keep], read.charset, read.shown)


def drop_cost(probs: tuple[float, ...], keep: list[int]) -> float:
    """Confidence kept after dropping the characters not in ``keep``.

    A character read at probability p is, with probability 1 - p, not a character at all
    (a sticker, an emblem), so its drop costs in proportion to p.  A surely read inner
    character costs more than one at the ends: country bands and screws at the ends are often
    read as clear letters, whereas marks between character groups rarely look like one.  The
    leading end is the cheapest: country bands, state/district codes and emblems sit on the
    left of plates in most countries, while the right end usually ends with the last character.
    """
    first, last = keep[0], keep[-1]
    cost = 1.0
    for i, p in enumerate(probs):
        if i not in keep:
            penalty = (LEAD_DROP_PENALTY if i < first else TAIL_DROP_PENALTY if i > last
                       else INNER_DROP_PENALTY)
            cost *= 1.0 - (1.0 - penalty) * p
    return cost


def kept_positions(n: int, max_chars: int) -> Iterator[list[int]]:
    """Every choice of characters to keep, at most ``max_chars`` of them: trimmed ends, then at
    most one inner drop."""
    for lead in range(MAX_LEAD_DROP + 1):
        for tail in range(MAX_TAIL_DROP + 1):
            span = list(range(lead, n - tail))
            if len(span) < MIN_CHARS:
                continue
            if len(span) <= max_chars:
                yield span
            if MAX_INNER_DROP and MIN_CHARS <= len(span) - 1 <= max_chars:
                for inner in span[1:-1]:
                    yield [i for i in span if i != inner]


def interpret(read: CharRead, matcher: FormatMatcher, *, dark_on_light: bool,
              spill: float, flat_surround: bool = False) -> Interpretation | None:
    """Best plate reading of an OCR line, or None if it does not look like a plate.

    Lines that fit no format are only kept as vanity plates when the read and the
    plate-panel evidence are both strong.  A flat dark surround (see :mod:`recognize.panel`)
    waives the spill only for readings of ``FLAT_MIN_CHARS`` or more: light-on-dark plates are
    that long in most countries, while badges on dark paint (C300, ES350, 328i) are shorter.
    """
    n = len(read.text)
    best: Interpretation | None = None
    if (VANITY_MIN_CHARS <= n <= VANITY_MAX_CHARS and min(read.char_probs) >= VANITY_MIN_CHAR
            and dark_on_light and spill <= VANITY_MAX_SPILL):
        best = Interpretation(read.text, read.confidence * UNMATCHED_FACTOR, None)
    if not any(c.isdigit() for c in read.text):
        # Plates mix letters and digits; all-letter words (brands, signs) only become a plate
        # through a forced O->0 or S->5, so they are judged as vanity plates instead.
        return best
    for keep in kept_positions(n, matcher.longest):  # a configured region may have long plates
        m = matcher.match(subset_read(read, keep))
        if m is None:
            continue
        run_on = 0.0 if flat_surround and len(keep) >= FLAT_MIN_CHARS else spill
        conf = m.score * drop_cost(read.char_probs, keep) * (1.0 - SPILL_WEIGHT * run_on)
        if best is None or conf > best.confidence:
            best = Interpretation(m.plate, conf, m.region)
    return best


def best_interpretation(reads: list[CharRead], matcher: FormatMatcher, *, dark_on_light: bool,
                        spill: float, flat_surround: bool = False) -> Interpretation | None:
    """Best plate reading among several reads of one line (crop variants).

    Each read proposes its best-fitting reading, and every proposal is then scored by all the
    reads together (:func:`mean_support`).  Crops of one line see the same characters, so a
    look-alike that one crop reads one way and another crop the other way (8/B, Z/2, D/0) goes
    to the side the crops back together, not to the one crop whose misreading happens to fit a
    format best.  Variants also fail differently (a sticker read as a character in colour fades
    in grey): the read that saw the sticker still backs the reading without it, at the price of
    dropping it, so one variant's error does not decide.

    Reads of different lengths are compared character by character: a longer read shows a
    proposal with extra characters at the price of dropping them, so a tight crop that lost a
    surely seen last character loses to the padded one, while a faint frame edge the padded
    crop caught costs little.  Vanity readings (no format) are judged by their own read, as in
    :func:`interpret`, with :func:`unseen_cost` for what a longer read of the line also saw.
    """
    if any(on_screen_time(r) for r in reads):
        return None
    reads = [r for r in reads if len(r.text) >= MIN_CHARS]
    vanity: dict[str, float] = {}
    proposals: set[tuple[str, str]] = set()
    for r in reads:
        i = interpret(r, matcher, dark_on_light=dark_on_light, spill=spill, flat_surround=flat_surround)
        if i is not None and i.region is None:
            vanity[i.plate] = max(vanity.get(i.plate, 0.0), i.confidence * unseen_cost(r, reads))
        elif i is not None and i.region is not None:
            proposals.add((i.plate, i.region))
    found = [Interpretation(plate, conf, None) for plate, conf in vanity.items()]
    for plate, region in sorted(proposals):
        run_on = 0.0 if flat_surround and len(plate) >= FLAT_MIN_CHARS else spill
        weight = (GENERIC_WEIGHT if region == GENERIC_REGION else 1.0) * (1.0 - SPILL_WEIGHT * run_on)
        found.append(Interpretation(plate, weight * mean_support(reads, plate), region))
    return max(found, key=lambda i: i.confidence, default=None)


def mean_support(reads: list[CharRead], plate: str) -> float:
    """How well the reads of one line show ``plate`` together, 0..1: the mean over the reads.

    A read at least as long as ``plate`` is scored by :func:`best_fit`, a shorter one by
    :func:`support_shorter`; for the shorter reads, the probabilities the longer ones gave each
    character of ``plate`` stand in for the end characters they did not see.
    """
    full = [(r, fit) for r in reads if len(r.text) >= len(plate) for fit in [best_fit(r, plate)]]
    seen = [probs for _, (score, probs) in full if score > 0.0]
    imputed = [sum(p[j] for p in seen) / len(seen) for j in range(len(plate))] if seen else None
    scores = [score for _, (score, _) in full]
    scores += [support_shorter(r, plate, imputed) for r in reads if len(r.text) < len(plate)]
    return sum(scores) / len(scores) if scores else 0.0


def best_fit(read: CharRead, plate: str) -> tuple[float, list[float]]:
    """The best fit of ``plate`` to a read at least as long, after end trims and an inner drop.

    Returns the score (see :func:`fit`, times the price of the drops; for the read that proposed
    ``plate`` this is what its format match gave it, before the format's weight and the spill)
    and the read's probability for each character of ``plate`` in that fit.
    """
    best: tuple[float, list[float]] = (0.0, [])
    for keep in kept_positions(len(read.text), len(plate)):
        if len(keep) == len(plate):
            score = fit(read, keep, plate) * drop_cost(read.char_probs, keep)
            if score > best[0]:
                best = (score, [char_prob(read, i, ch) for i, ch in zip(keep, plate, strict=True)])
    return best


def support_shorter(read: CharRead, plate: str, imputed: list[float] | None) -> float:
    """How well a read shorter than ``plate`` shows it, 0..1.

    A read that lacks end characters of ``plate`` (the crop ended on the plate's edge, or the
    recogniser dropped a faint first or last character) shows the rest; the characters it did
    not see count with the probability the longer reads gave them (``imputed``), so a surely
    seen last character costs nothing while an unsure mark beside the plate costs what it
    would cost the read that saw it.  A read that lacks an inner character backs ``plate`` only
    at ``INNER_DROP_PENALTY``, as if it had surely read nothing there: a seal or sticker between
    the character groups that one crop read as a character is missing from the others.
    """
    n, m = len(read.text), len(plate)
    everything = list(range(n))
    best = 0.0
    for lead in range(MAX_LEAD_DROP + 1):
        tail = m - n - lead
        if imputed is not None and 0 <= tail <= MAX_TAIL_DROP:
            unseen = imputed[:lead] + imputed[m - tail :]
            shared = fit(read, everything, plate[lead : m - tail])
            top = float(np.prod(read.char_probs)) ** (1.0 / n)
            rest = shared / max(top, 1e-12)  # the substitution prices alone
            geo = (top ** n * float(np.prod(np.maximum(unseen, 1e-12)))) ** (1.0 / m)
            best = max(best, geo * rest)
    if m - n == 1:
        for inner in range(1, m - 1):
            best = max(best, INNER_DROP_PENALTY * fit(read, everything, plate[:inner] + plate[inner + 1 :]))
    return best


def fit(read: CharRead, keep: list[int], plate: str) -> float:
    """Score of ``plate`` read at positions ``keep`` of ``read``: 0 where the read disagrees.

    The geometric mean of the kept characters' top probabilities, times, for every position
    where ``plate`` has another character, that character's share of the top probability (as
    :meth:`recognize.formats.FormatMatcher.match` prices a substitution); a character the
    read gives less than ``MIN_CHAR_PROB`` does not fit at all.
    """
    top = [read.char_probs[i] for i in keep]
    score = float(np.exp(np.mean(np.log(np.maximum(top, 1e-12)))))
    for i, ch, t in zip(keep, plate, top, strict=True):
        q = char_prob(read, i, ch)
        if q < MIN_CHAR_PROB:
            return 0.0
        score *= min(q / max(t, 1e-12), 1.0)
    return score


def char_prob(read: CharRead, i: int, ch: str) -> float:
    """The model's probability that position ``i`` of ``read`` is ``ch``.

    A class change is priced by :func:`recognize.formats.look_alike_prob`, as in
    :func:`recognize.formats.best_of_class`, so a proposal's own read supports it as fully as
    the format match that proposed it.
    """
    if ch == read.text[i]:
        return read.char_probs[i]
    return look_alike_prob(read, i, ch)


def unseen_cost(read: CharRead, reads: list[CharRead]) -> float:
    """Confidence ``read`` keeps for the end characters that a longer read of the line also saw.

    Only reads that contain ``read`` whole count: one that differs inside it (a sticker read as
    a character between the groups) is another reading, not more of the same one.  Used for
    vanity readings, which no format lets another read score.
    """
    cost = 1.0
    for other in reads:
        start = other.text.find(read.text) if len(other.text) > len(read.text) else -1
        if start >= 0:
            cost = min(cost, drop_cost(other.char_probs, list(range(start, start + len(read.text)))))
    return cost
