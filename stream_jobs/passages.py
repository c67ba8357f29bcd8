"""From a plate's raw reads to its passages: the common ground of journeys and charges.

A *passage* is one vehicle going past one camera. Cameras often read a plate several times as it
passes, and the pipeline may deliver a read twice; both must count once. The rules here are
functions of the *set* of reads a plate has, never of their arrival order, so disorder and
replays cannot change the answer.

A passage is known by its first read, and how long it lasts by its last: the reads in between
matter to nothing. So the per-plate job keeps each passage as one *run* (its first sighting,
carrying the last read's time): a car parked in front of a camera or a plate spammed a thousand
times a second stays one entry, not a list that grows with every read and is sorted again on
each (see :func:`passages`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple


class Sighting(NamedTuple):
    """The little the stateful jobs keep of a read: when, where, and its idempotency key; as a
    run, also the time of the last read merged into it.

    A named tuple, not a dataclass: the per-plate job makes one per read and sorts a plate's
    sightings on every read, and tuples are built and compared in C.
    """

    ts_ms: int
    camera_id: str
    read_id: str
    last_ms: int = 0  # a run's last read (0: a single read)
    image_ref: str = ""  # the read's picture ("": none), for the charge a passage makes
    vehicle_class: str = ""  # the type the camera reported ("": none), for the class a charge is priced at

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, UTC)

    @property
    def end_ms(self) -> int:
        return max(self.ts_ms, self.last_ms)

    def to_json(self) -> list:
        """The fields up to the last one set: most sightings are a single read with no picture."""
        item = list(self)
        while len(item) > 3 and not item[-1]:
            item.pop()
        return item

    @classmethod
    def from_json(cls, item: list) -> Sighting:
        return cls(int(item[0]), str(item[1]), str(item[2]), int(item[3]) if len(item) > 3 else 0,
                   str(item[4]) if len(item) > 4 else "", str(item[5]) if len(item) > 5 else "")


class Passage(NamedTuple):
    """A vehicle passing a camera: its first sighting stands for it, ``reads`` is how many merged
    (a run kept by the job counts as one).

    Passages order by their first sighting (time first), which no two passages share.
    """

    first: Sighting
    reads: int

    @property
    def camera_id(self) -> str:
        return self.first.camera_id

    @property
    def ts_ms(self) -> int:
        return self.first.ts_ms


def passages(sightings: set[Sighting] | list[Sighting], dedup_window_s: float) -> list[Passage]:
    """Merge sightings at the same camera less than ``dedup_window_s`` apart (chained), in time order.

    Each passage's ``first`` is its run: the first sighting, with the chain's last read time (see
    :attr:`Sighting.last_ms`). Runs merge like single sightings (a read between two runs, or
    within the window of both, joins them), so the passages of the runs kept and a new read are
    the passages of all the reads: the job keeps the runs alone. Sightings are unique by read_id,
    so the same read delivered twice is already one.
    """
    window_ms = dedup_window_s * 1000
    by_camera: dict[str, list[Sighting]] = {}
    for s in sorted({s.read_id: s for s in sightings}.values()):
        by_camera.setdefault(s.camera_id, []).append(s)
    result = []
    for camera_sightings in by_camera.values():
        first = camera_sightings[0]
        end, count = first.end_ms, 1
        for s in camera_sightings[1:]:
            if s.ts_ms - end < window_ms:
                end, count = max(end, s.end_ms), count + 1
            else:
                result.append(Passage(_run(first, end), count))
                first, end, count = s, s.end_ms, 1
        result.append(Passage(_run(first, end), count))
    return sorted(result)


def _run(first: Sighting, end_ms: int) -> Sighting:
    return first if end_ms == first.end_ms else first._replace(last_ms=end_ms)
