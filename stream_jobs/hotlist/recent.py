"""The reads a screener saw a moment ago, so that a plate listed while it passes still raises a hit.

Screening is instant: a read is checked against the hotlist as it stands when the read arrives.
An officer who lists a plate seconds after it passed a camera (the call came in while the car
drove by) would otherwise hear nothing until its next sighting.  Each screener therefore keeps
the reads it screened in the last ``keep_s`` seconds, by plate, and screens a newly listed
plate's reads (and their OCR look-alikes) once more.  The hits carry the same stable ids as
if the read had arrived after the listing, so a read that raced the listing raises one hit.

The window lives in memory: a screener that restarts forgets its last minute (best effort), and
it is bounded by ``max_reads`` so that a burst cannot grow it without limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from gantry.events import PlateRead

KEEP_S = 60.0  # how long after a read a listing of its plate still raises its hit
MAX_READS = 200_000  # about a minute of a large city's reads; the oldest go first


class RecentReads:
    """Reads by plate over the last ``keep_s`` seconds of arrival time (a monotonic clock)."""

    def __init__(self, keep_s: float = KEEP_S, max_reads: int = MAX_READS) -> None:
        self.keep_s, self.max_reads = keep_s, max_reads
        self._arrivals: deque[tuple[float, PlateRead]] = deque()
        self._by_plate: dict[str, deque[PlateRead]] = {}

    def __len__(self) -> int:
        return len(self._arrivals)

    def add(self, read: PlateRead, now: float) -> None:
        self._forget(now)
        if len(self._arrivals) >= self.max_reads:
            self._drop_oldest()
        self._arrivals.append((now, read))
        self._by_plate.setdefault(read.plate, deque()).append(read)

    def of_plates(self, plates: Iterable[str], now: float) -> list[PlateRead]:
        """The reads of these plates still in the window, oldest first per plate."""
        self._forget(now)
        return [read for plate in dict.fromkeys(plates) for read in self._by_plate.get(plate, ())]

    def _forget(self, now: float) -> None:
        while self._arrivals and self._arrivals[0][0] < now - self.keep_s:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, read = self._arrivals.popleft()
        reads = self._by_plate[read.plate]
        reads.popleft()  # a plate's reads arrive in the same order as all reads
        if not reads:
            del self._by_plate[read.plate]
