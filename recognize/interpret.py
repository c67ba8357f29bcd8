"""From an OCR line to a plate reading: which characters belong to the plate, and which format.

A detected text line often carries more than the plate's characters: the country band or a
frame screw at the ends, an inspection sticker, seal or coat of arms between the character
groups (CZ, SK, DE, HR plates and US plates with a state emblem all have one).  The OCR reads
such marks as a character, usually with low confidence.  Every way of dropping up to two
leading, one trailing and one inner character is therefore tried against the formats, each
drop costing in proportion to how surely the dropped character was read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from recognize.base import CharRead
from recognize.formats import FormatMatcher

MIN_CHARS, MAX_CHARS = 4, 8
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


@dataclass(frozen=True)
class Interpretation:
    plate: str
    confidence: float
    region: str | None


def subset_read(read: CharRead, keep: list[int]) -> CharRead:
    """The read restricted to the characters at ``keep`` (in order)."""
    return CharRead("".join(read.text[i] for i in keep), tuple(read.char_probs[i] for i in keep),
                    read.alternatives[keep], read.charset)


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


def kept_positions(n: int) -> Iterator[list[int]]:
    """Every choice of characters to keep: trimmed ends, then at most one inner drop."""
    for lead in range(MAX_LEAD_DROP + 1):
        for tail in range(MAX_TAIL_DROP + 1):
            span = list(range(lead, n - tail))
            if len(span) < MIN_CHARS:
                continue
            if len(span) <= MAX_CHARS:
                yield span
            if MAX_INNER_DROP and MIN_CHARS <= len(span) - 1 <= MAX_CHARS:
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
    if (VANITY_MIN_CHARS <= n <= MAX_CHARS and min(read.char_probs) >= VANITY_MIN_CHAR
            and dark_on_light and spill <= VANITY_MAX_SPILL):
        best = Interpretation(read.text, read.confidence * UNMATCHED_FACTOR, None)
    if not any(c.isdigit() for c in read.text):
        # Plates mix letters and digits; all-letter words (brands, signs) only become a plate
        # through a forced O->0 or S->5, so they are judged as vanity plates instead.
        return best
    for keep in kept_positions(n):
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

    Variants fail differently (a sticker read as a character in colour fades in grey), so
    the reading that fits a plate best is kept rather than an average that each error drags.
    A read that another read contains (the tight crop lost an end character that the padded
    crop saw) pays for the characters it lacks as if it had dropped them from the longer read:
    a surely seen last character is not lost for free, a faint mark beside the plate costs little.
    """
    found = []
    for r in reads:
        if len(r.text) < MIN_CHARS:
            continue
        i = interpret(r, matcher, dark_on_light=dark_on_light, spill=spill, flat_surround=flat_surround)
        if i is not None:
            found.append(Interpretation(i.plate, i.confidence * unseen_cost(r, reads), i.region))
    return max(found, key=lambda i: i.confidence, default=None)


def unseen_cost(read: CharRead, reads: list[CharRead]) -> float:
    """Confidence ``read`` keeps for the end characters that a longer read of the line also saw.

    Only reads that contain ``read`` whole count: one that differs inside it (a sticker read as
    a character between the groups) is another reading, not more of the same one.
    """
    cost = 1.0
    for other in reads:
        start = other.text.find(read.text) if len(other.text) > len(read.text) else -1
        if start >= 0:
            cost = min(cost, drop_cost(other.char_probs, list(range(start, start + len(read.text)))))
    return cost
