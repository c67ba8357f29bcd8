"""2N's "last 5 snapshots kept per device": the pictures of each camera's latest reads, at hand.

An access unit shows its operator the pictures of its last few reads (who was at the barrier
just now). They are listed from the snapshot store, where every read's pictures are written
before the read is sent, newest first by the time they were stored: the endpoint keeps nothing,
so a restart loses none of them, every endpoint in front of one store lists the same five, and
an erased plate's pictures, gone from the store, are no longer listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest.snapshots import SnapshotStore

KEPT = 5


@dataclass(frozen=True)
class Snapshot:
    read_id: str
    stored_at: datetime
    image_ref: str  # the overview, else the plate picture (as the read refers to them)

    def to_json(self) -> dict[str, str]:
        return {"read_id": self.read_id, "stored_at": self.stored_at.isoformat(), "image_ref": self.image_ref}


def last_snapshots(store: SnapshotStore, camera_id: str, kept: int = KEPT) -> list[Snapshot]:
    """The camera's last ``kept`` reads with a picture, the latest stored first."""
    return [Snapshot(p.read_id, p.stored_at, p.image_ref) for p in store.latest(camera_id, kept)]


def find_snapshot(store: SnapshotStore, camera_id: str, read_id: str, kept: int = KEPT) -> Snapshot | None:
    """One of the camera's last ``kept`` snapshots; an older read's picture is not served here."""
    return next((s for s in last_snapshots(store, camera_id, kept) if s.read_id == read_id), None)
