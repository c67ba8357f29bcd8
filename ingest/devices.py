"""2N's "last 5 snapshots kept per device": the pictures of each camera's latest reads, at hand.

An access unit shows its operator the pictures of its last few reads (who was at the barrier
just now). The edge endpoint keeps, per camera, the last :data:`KEPT` reads that came with a
picture, in the order they arrived, and lists them at ``GET /v1/devices/{camera}/snapshots``;
``GET /v1/devices/{camera}/snapshots/{read_id}`` serves one of those pictures from the snapshot
store. Only the read's id, time and ``image_ref`` are kept, in memory: a restart starts the lists
again, and an erased plate's pictures are gone from the store, so they are no longer served.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from gantry.events import PlateRead

KEPT = 5


@dataclass(frozen=True)
class Snapshot:
    read_id: str
    ts: datetime
    image_ref: str

    def to_json(self) -> dict[str, str]:
        return {"read_id": self.read_id, "ts": self.ts.isoformat(), "image_ref": self.image_ref}


class DeviceSnapshots:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._by_camera: dict[str, deque[Snapshot]] = {}

    def add(self, read: PlateRead) -> None:
        """Keep the read's picture, if it has one; a read sent again is kept once."""
        if read.image_ref is None:
            return
        kept = self._by_camera.setdefault(read.camera_id, deque(maxlen=self.kept))
        if all(s.read_id != read.read_id for s in kept):
            kept.appendleft(Snapshot(read.read_id, read.ts, read.image_ref))

    def of(self, camera_id: str) -> list[Snapshot]:
        """The camera's kept pictures, the latest first."""
        return list(self._by_camera.get(camera_id, ()))

    def find(self, camera_id: str, read_id: str) -> Snapshot | None:
        return next((s for s in self.of(camera_id) if s.read_id == read_id), None)
