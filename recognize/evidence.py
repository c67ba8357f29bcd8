"""The pictures behind reads from video: stored before the read is sent, as an edge camera's are."""

from __future__ import annotations

import numpy as np

from gantry.events import BoundingBox, Frame, PlateRead
from ingest.snapshots import SnapshotStore
from recognize.tracking import Passage, StreamingVoter


class Evidence:
    """The pictures behind reads from video, as edge cameras send them: the frame that shows the
    passage best (the overview, which ``image_ref`` names) and its plate cut out, written to the
    snapshot store before the read is sent (:mod:`ingest.snapshots`: the store that ingest, the
    API, retention and erasure share).

    A passage is voted when its track closes, frames after the one that shows it best, so the
    JPEGs of frames that an open track holds are kept until then (the track's frames are not
    committed either: a crash replays them). Paths come from the read id, so a replay writes the
    same pictures again rather than new ones.
    """

    CROP_MARGIN = 0.25  # of the plate's size on each side: the plate's surround identifies a car too

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._jpegs: dict[tuple[str, str], bytes] = {}

    def __len__(self) -> int:
        """How many frames' pictures are held."""
        return len(self._jpegs)

    def hold(self, frame: Frame) -> None:
        self._jpegs[(frame.camera_id, frame.frame_id)] = frame.jpeg

    def release(self, voter: StreamingVoter) -> None:
        """Let go of every frame no open track holds."""
        held = {(s.camera_id, s.frame_id) for tracks in voter.open.values() for o in tracks for s in o.sightings}
        self._jpegs = {k: v for k, v in self._jpegs.items() if k in held}

    def keep(self, read: PlateRead, passage: Passage) -> PlateRead:
        """Store the read's pictures; the read naming its overview. Raises OSError if the store fails."""
        jpeg = self._jpegs[(passage.best.camera_id, passage.best.frame_id)]
        ref = self.store.put(read.ts, read.camera_id, read.read_id, "overview", jpeg)
        crop = plate_crop(jpeg, read.bbox, self.CROP_MARGIN)
        if crop is not None:
            self.store.put(read.ts, read.camera_id, read.read_id, "plate", crop)
        return read.model_copy(update={"image_ref": ref})


def plate_crop(jpeg: bytes, box: BoundingBox | None, margin: float) -> bytes | None:
    """The plate cut out of its frame with a margin, as JPEG (None: no box, or nothing left of it)."""
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or box is None:
        return None
    dx, dy = int(box.w * margin), int(box.h * margin)
    height, width = image.shape[:2]
    x0, y0 = max(box.x - dx, 0), max(box.y - dy, 0)
    x1, y1 = min(box.x + box.w + dx, width), min(box.y + box.h + dy, height)
    if x1 <= x0 or y1 <= y0:
        return None
    ok, buffer = cv2.imencode(".jpg", image[y0:y1, x0:x1])
    return buffer.tobytes() if ok else None
