"""A read from video keeps the frame that shows it best, and its plate cut out, in the snapshot store."""

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from gantry.events import BoundingBox, Frame
from ingest.snapshots import SnapshotStore
from recognize.base import BoundingBox as Box
from recognize.base import PlateResult
from recognize.driver import plate_read
from recognize.evidence import Evidence, plate_crop
from recognize.tracking import Sighting, StreamingVoter

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def frame(i: int) -> Frame:
    image = np.full((720, 1280, 3), 40 * i, np.uint8)  # each frame its own shade, to tell them apart
    return Frame(camera_id="cam1", ts=T0 + timedelta(seconds=0.2 * i), frame_id=f"f{i}",
                 jpeg=cv2.imencode(".jpg", image)[1].tobytes(), width=1280, height=720)


def test_the_best_frame_of_a_passage_is_stored_with_its_plate_and_the_rest_let_go(tmp_path):
    store = SnapshotStore((tmp_path / "snapshots").as_uri())
    evidence, voter = Evidence(store), StreamingVoter(max_gap_s=1.0, idle_s=5.0)
    frames = [frame(i) for i in range(3)]
    for i, (f, confidence) in enumerate(zip(frames, (0.7, 0.95, 0.8), strict=True)):
        evidence.hold(f)
        voter.add(Sighting("cam1", f.frame_id, f.ts, ("frames", 0), i),
                  [PlateResult("AB12CDE", confidence, "uk", Box(100 + 10 * i, 400, 120, 30))], now=i)
    evidence.release(voter)
    assert len(evidence) == 3  # the open track holds all three
    [passage] = voter.flush_idle(now=100)
    read = evidence.keep(plate_read(passage), passage)
    assert store.get(read.image_ref) == frames[1].jpeg  # the surest read's frame
    crop = store.get(read.image_ref.replace("-overview.jpg", "-plate.jpg"))
    assert cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (30 + 2 * 7, 120 + 2 * 30)
    evidence.release(voter)
    assert len(evidence) == 0


def test_a_plate_crop_stays_inside_its_frame():
    jpeg = frame(1).jpeg
    corner = plate_crop(jpeg, BoundingBox(x=1250, y=700, w=100, h=40), margin=0.25)
    assert cv2.imdecode(np.frombuffer(corner, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (30, 55)
    assert plate_crop(jpeg, None, margin=0.25) is None
    assert plate_crop(jpeg, BoundingBox(x=1300, y=10, w=10, h=10), margin=0.0) is None
