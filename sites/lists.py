"""The hotlist's lists as a site reads them: by plate, and by holder.

The lists are the hotlist itself (the compacted ``hotlist`` topic, keyed ``list:plate``), so an
operator keeps one set of lists with ``gantry hotlist import``; a site gives some of them a
meaning (allow or deny). An entry may name its ``holder`` (2N's user uuid), who may have several
plates: the book finds a holder's other plates, for the one-car-inside rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from gantry.events import HotlistEntry
from stream_jobs.hotlist.rules import HotlistIndex, confusable_variants

Match = Literal["exact", "possible"]


class ListBook(HotlistIndex):
    """A :class:`HotlistIndex` that also knows each holder's plates."""

    def __init__(self) -> None:
        super().__init__()
        self._by_holder: dict[str, set[str]] = {}

    def put(self, entry: HotlistEntry) -> None:
        super().put(entry)
        if entry.holder is not None:
            self._by_holder.setdefault(entry.holder, set()).add(entry.key)

    def remove(self, key: str) -> None:
        old = self._by_key.get(key)
        super().remove(key)
        if old is not None and old.holder is not None:
            keys = self._by_holder[old.holder]
            keys.discard(key)
            if not keys:
                del self._by_holder[old.holder]

    def plates_of(self, holder: str) -> set[str]:
        return {self._by_key[key].plate for key in self._by_holder.get(holder, ())}

    def candidates(self, plate: str, lists: frozenset[str], *, fuzzy: bool) -> Iterator[tuple[HotlistEntry, Match]]:
        """Entries of ``lists`` for the plate: exact ones first, then (only if ``fuzzy``) those
        one OCR-confusable glyph away, by the hotlist's own rule."""
        for entry in self.on_plate(plate):
            if entry.list in lists:
                yield entry, "exact"
        if fuzzy:
            for variant in confusable_variants(plate):
                for entry in self.on_plate(variant):
                    if entry.list in lists:
                        yield entry, "possible"
