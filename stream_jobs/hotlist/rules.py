"""Hotlist matching: which listed plates a read is, or might be.

OCR confuses a few glyph pairs (O/0, I/1, B/8, S/5, Z/2). A read that differs from a listed plate
in exactly one such character is reported as a *possible* hit rather than dropped, because a
missed stolen car costs more than an officer glancing at a near-miss. Matching is a handful of
dictionary look-ups per read, so it stays cheap with hundreds of thousands of entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from gantry.events import HotlistEntry, HotlistHit, PlateRead
from gantry.ids import stable_id
from stream_jobs.registers import PlateIndex

CONFUSABLE_PAIRS = (("O", "0"), ("I", "1"), ("B", "8"), ("S", "5"), ("Z", "2"))
_COUNTERPART = {a: b for a, b in CONFUSABLE_PAIRS} | {b: a for a, b in CONFUSABLE_PAIRS}


@lru_cache(maxsize=65_536)
def confusable_variants(plate: str) -> tuple[str, ...]:
    """Every plate that differs from ``plate`` in exactly one OCR-confusable character.

    Cached: screening asks for every read, and a vehicle is read by camera after camera.
    """
    return tuple(plate[:i] + other + plate[i + 1 :] for i, char in enumerate(plate)
                 if (other := _COUNTERPART.get(char)) is not None)


class HotlistIndex(PlateIndex[HotlistEntry]):
    """The current hotlist, keyed ``list:plate`` and looked up by plate, built from the compacted
    ``hotlist`` topic (a tombstone removes an entry, so applying the topic in order from the
    beginning always reproduces the current list)."""

    def entries(self) -> list[HotlistEntry]:
        return sorted(self._by_key.values(), key=lambda e: (e.list, e.plate))


def hit_id(read_id: str, entry: HotlistEntry) -> str:
    """Stable per read and entry, so a replayed read raises the same hit (and one webhook delivery)."""
    return stable_id("hit", read_id, entry.list, entry.plate)


def match(read: PlateRead, index: HotlistIndex) -> list[HotlistHit]:
    """The hits a read raises: exact matches, then possible ones, each only inside its validity."""
    candidates = [(entry, "exact") for entry in index.on_plate(read.plate)]
    candidates += [
        (entry, "possible") for variant in confusable_variants(read.plate) for entry in index.on_plate(variant)
    ]
    return [
        HotlistHit(
            hit_id=hit_id(read.read_id, entry),
            read_id=read.read_id,
            camera_id=read.camera_id,
            ts=read.ts,
            plate=read.plate,
            listed_plate=entry.plate,
            list=entry.list,
            reason=entry.reason,
            priority=entry.priority,
            match=kind,
            confidence=read.confidence,
            image_ref=read.image_ref,
        )
        for entry, kind in candidates
        if entry.valid_at(read.ts)
    ]


def listing_hits(entry: HotlistEntry, reads: Iterable[PlateRead], index: HotlistIndex) -> list[HotlistHit]:
    """The hits a just-listed ``entry`` raises on reads screened before it was listed.

    ``reads`` are the recent reads of its plate and look-alikes; only the hits on this entry
    count (the others were raised when the reads arrived), and the index decides, so an entry
    changed or removed again since is screened as it now stands.
    """
    return [hit for read in reads for hit in match(read, index)
            if (hit.list, hit.listed_plate) == (entry.list, entry.plate)]


def listing_plates(entry: HotlistEntry) -> list[str]:
    """The plates whose reads a new entry can match: its own and its OCR look-alikes."""
    return [entry.plate, *confusable_variants(entry.plate)]
