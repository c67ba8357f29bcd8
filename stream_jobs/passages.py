"""From a plate's raw reads to its passages: the common ground of journeys and charges.

A *passage* is one vehicle going past one camera. Cameras often read a plate several times as it
passes, and the pipeline may deliver a read twice; both must count once. The rules here are
functions of the *set* of reads a plate has, never of their arrival order, so disorder and
replays cannot change the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple


class Sighting(NamedTuple):
    """The little the stateful jobs keep of a read: when, where, and its idempotency key.

    A named tuple, not a dataclass: the per-plate job makes one per read and sorts a plate's
    sightings on every read, and tuples are built and compared in C.
    """

    ts_ms: int
    camera_id: str
    read_id: str

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, UTC)

    def to_json(self) -> list:
        return [self.ts_ms, self.camera_id, self.read_id]

    @classmethod
    def from_json(cls, item: list) -> Sighting:
        return cls(int(item[0]), str(item[1]), str(item[2]))


class Passage(NamedTuple):
    """A vehicle passing a camera: its first sighting stands for it, ``reads`` is how many merged.

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

    Sightings are unique by read_id, so the same read delivered twice is already one.
    """
    window_ms = dedup_window_s * 1000
    by_camera: dict[str, list[Sighting]] = {}
    for s in sorted({s.read_id: s for s in sightings}.values()):
        by_camera.setdefault(s.camera_id, []).append(s)
    result = []
    for camera_sightings in by_camera.values():
        first, last, count = camera_sightings[0], camera_sightings[0], 1
        for s in camera_sightings[1:]:
            if s.ts_ms - last.ts_ms < window_ms:
                last, count = s, count + 1
            else:
                result.append(Passage(first, count))
                first, last, count = s, s, 1
        result.append(Passage(first, count))
    return sorted(result)
