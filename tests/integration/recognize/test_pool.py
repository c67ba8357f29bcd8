"""The Ray recognizer pool against the real broker: frames in, plate reads out, nothing lost."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, Frame, PlateRead, decode, encode
from gantry.kafka import consumer, producer
from gantry.synthetic import build_city, render_scene
from ingest.snapshots import SnapshotStore, store_url
from recognize import driver

pytestmark = pytest.mark.integration


def frame_of(passage, index: int) -> Frame:
    ok, jpeg = cv2.imencode(".jpg", render_scene(passage, index))
    assert ok
    return Frame(camera_id=passage.camera_id, ts=passage.ts, frame_id=f"frame-{index}", jpeg=jpeg.tobytes(),
                 width=1280, height=720)


def collect(bootstrap: str, group: str, topic: str, model, count: int, timeout_s: float = 120):
    source = consumer(bootstrap, group, [topic])
    found, deadline = [], time.monotonic() + timeout_s
    while len(found) < count and time.monotonic() < deadline:
        for messages in source.poll(500).values():
            found += [decode(model, m.value) for m in messages]
    source.close()
    return found


@pytest.fixture(scope="module")
def running_pool(broker, tmp_path_factory):
    config = GantryConfig(broker={"bootstrap_servers": broker.bootstrap_servers}, warehouse={"dsn": "chdb:///unused"},
                          data_dir=tmp_path_factory.mktemp("pool"))
    stop = threading.Event()
    worker = threading.Thread(target=driver.run, args=(config, 0, stop), daemon=True)
    worker.start()
    yield config
    stop.set()
    worker.join(30)


def test_frames_become_reads_keyed_by_plate_with_stable_ids(broker, running_pool):
    city = build_city(cameras=2, vehicles=3, seed=5, start=datetime.now(UTC))
    frames = [frame_of(p, i) for i, p in enumerate(city.passages)]
    out = producer(broker.bootstrap_servers)
    for frame in frames + frames[:1]:  # the first frame twice, as after a crash
        out.send(topics.FRAMES, key=frame.camera_id.encode(), value=encode(frame))
    out.send(topics.FRAMES, value=b'{"v":1,"camera_id":"cam-broken"}')
    out.flush()

    reads = collect(broker.bootstrap_servers, "test-reads", topics.PLATE_READS, PlateRead, len(frames) + 1)
    assert sorted((r.frame_id, r.plate) for r in reads) == sorted(
        [(f.frame_id, p.plate) for f, p in zip(frames, city.passages, strict=True)]
        + [(frames[0].frame_id, city.passages[0].plate)]
    )
    replayed = [r for r in reads if r.frame_id == frames[0].frame_id]
    assert len({r.read_id for r in replayed}) == 1, "a replayed frame must give the same read id"
    assert all(0 < r.confidence <= 1 and r.bbox is not None for r in reads)
    # The evidence, as edge cameras send it: the frame, and the plate cut out of it beside it.
    store = SnapshotStore(store_url(running_pool))
    jpegs = {f.frame_id: f.jpeg for f in frames}
    assert all(store.get(r.image_ref) == jpegs[r.frame_id] for r in reads)
    for r in reads:
        crop = cv2.imdecode(np.frombuffer(store.get(r.image_ref.replace("-overview.jpg", "-plate.jpg")), np.uint8),
                            cv2.IMREAD_COLOR)
        assert r.bbox.w <= crop.shape[1] < 1280 and r.bbox.h <= crop.shape[0] < 720
    assert len({r.image_ref for r in replayed}) == 1, "a replayed frame must give the same pictures"

    letters = collect(broker.bootstrap_servers, "test-letters", topics.DEAD_LETTERS, DeadLetter, 100, 10)
    ours = [d for d in letters if "cam-broken" in d.payload]
    assert [(d.stage, d.source_topic) for d in ours] == [("recognize", topics.FRAMES)]
    assert ours[0].reason.startswith("invalid Frame: ")


def test_a_car_passing_through_video_frames_yields_one_read(broker, running_pool):
    from dataclasses import replace
    from datetime import timedelta

    passage = build_city(cameras=1, vehicles=1, seed=9, start=datetime.now(UTC)).passages[0]
    passage = replace(passage, camera_id="cam-video")
    out = producer(broker.bootstrap_servers)
    for i in range(6):
        ok, jpeg = cv2.imencode(".jpg", render_scene(passage, i, centre=(400 + 60 * i, 380 + 10 * i)))
        frame = Frame(camera_id="cam-video", ts=passage.ts + timedelta(milliseconds=200 * i), frame_id=f"video-{i}",
                      jpeg=jpeg.tobytes(), width=1280, height=720)
        out.send(topics.FRAMES, key=b"cam-video", value=encode(frame))
    out.flush()

    reads = [r for r in collect(broker.bootstrap_servers, "test-video", topics.PLATE_READS, PlateRead, 100, 20)
             if r.camera_id == "cam-video"]
    assert [r.plate for r in reads] == [passage.plate]
    assert reads[0].frame_id.startswith("video-")
    assert reads[0].image_ref.endswith(f"/cam-video/{reads[0].read_id}-overview.jpg")


def test_reads_whose_pictures_could_not_be_stored_come_once_the_store_works_again(broker, running_pool):
    """A failing snapshot store sends no read and commits nothing: the frames are read again until
    the pictures are stored, and every read then arrives with an ``image_ref`` that resolves."""
    from dataclasses import replace

    from kafka import KafkaConsumer, TopicPartition
    from prometheus_client import REGISTRY

    def store_failures() -> float:
        return REGISTRY.get_sample_value("gantry_errors_total", {"stage": "recognize", "reason": "snapshot_store"}) or 0

    city = build_city(cameras=1, vehicles=2, seed=5, start=datetime.now(UTC))
    passages = [replace(p, camera_id="cam-nostore") for p in city.passages]
    frames = [frame_of(p, i).model_copy(update={"frame_id": f"nostore-{i}"}) for i, p in enumerate(passages)]
    # Where the camera's pictures go, a file: the store cannot create the folder (whoever runs the test).
    blocked = (running_pool.data_dir / "snapshots").resolve() / frames[0].ts.date().isoformat() / "cam-nostore"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"not a folder")
    failures = store_failures()
    out = producer(broker.bootstrap_servers)
    offsets = [out.send(topics.FRAMES, key=b"cam-nostore", value=encode(f)).get(30) for f in frames]
    partition = TopicPartition(topics.FRAMES, offsets[0].partition)
    reads = consumer(broker.bootstrap_servers, f"test-nostore-{uuid.uuid4().hex}", [topics.PLATE_READS])
    group = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=driver.GROUP_ID,
                          enable_auto_commit=False)
    try:
        early, deadline = [], time.monotonic() + 120
        while store_failures() < failures + 2 and time.monotonic() < deadline:
            early += reads_of(reads, 1, 0.5)
        assert store_failures() >= failures + 2, "the frames must be read again after the store failed"
        assert (group.committed(partition) or 0) <= offsets[0].offset, "no frame is committed without its pictures"
        assert not early + reads_of(reads, 1, 2), "no read leaves without its pictures"
    finally:
        blocked.unlink()
        group.close()
    try:
        found = reads_of(reads, len(frames), 120)
    finally:
        reads.close()
    assert {(r.frame_id, r.plate) for r in found} == {(f.frame_id, p.plate) for f, p in zip(frames, passages,
                                                                                               strict=True)}
    assert len({r.read_id for r in found}) == len(frames), "a read sent again keeps its id"
    store = SnapshotStore(store_url(running_pool))
    jpegs = {f.frame_id: f.jpeg for f in frames}
    assert all(store.get(r.image_ref) == jpegs[r.frame_id] for r in found)
    assert all(store.get(r.image_ref.replace("-overview.jpg", "-plate.jpg")) for r in found)


def reads_of(source, count: int, timeout_s: float, camera_id: str = "cam-nostore") -> list[PlateRead]:
    """The reads of one camera that ``source`` polls within ``timeout_s``, stopping at ``count`` frames."""
    found: list[PlateRead] = []
    deadline = time.monotonic() + timeout_s
    while len({r.frame_id for r in found}) < count and time.monotonic() < deadline:
        for messages in source.poll(500).values():
            found += [r for r in (decode(PlateRead, m.value) for m in messages) if r.camera_id == camera_id]
    return found


def test_frames_too_large_or_cut_short_go_to_dead_letters_and_the_pool_reads_on(broker, running_pool):
    """A frame of a few hundred bytes that declares 9,000 × 9,000 pixels would make OpenCV allocate
    a quarter of a gigabyte per frame (and 32,000 × 32,000, six): it is refused from its header,
    before any decoding. A JPEG cut short is refused once it does not decode. Neither stops the
    frames after them."""
    from dataclasses import replace

    passages = [replace(p, camera_id="cam-hostile")
                for p in build_city(cameras=1, vehicles=2, seed=11, start=datetime.now(UTC)).passages]
    good = [frame_of(p, i).model_copy(update={"frame_id": f"hostile-{i}"}) for i, p in enumerate(passages)]
    small = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    at = small.index(b"\xff\xc0")
    bomb = small[: at + 5] + (9000).to_bytes(2, "big") * 2 + small[at + 9 :]
    huge = Frame(camera_id="cam-hostile", ts=passages[0].ts, frame_id="hostile-bomb", jpeg=bomb, width=9000,
                 height=9000)
    cut = good[0].model_copy(update={"frame_id": "hostile-cut", "jpeg": good[0].jpeg[: len(good[0].jpeg) // 2]})
    out = producer(broker.bootstrap_servers)
    for frame in (huge, cut, good[0], good[1]):
        out.send(topics.FRAMES, key=b"cam-hostile", value=encode(frame))
    out.flush()

    reads = consumer(broker.bootstrap_servers, f"test-hostile-{uuid.uuid4().hex}", [topics.PLATE_READS])
    try:
        found = reads_of(reads, len(good), 120, camera_id="cam-hostile")
    finally:
        reads.close()
    assert {(r.frame_id, r.plate) for r in found} == {(f.frame_id, p.plate) for f, p in zip(good, passages,
                                                                                               strict=True)}
    letters = collect(broker.bootstrap_servers, f"test-hostile-letters-{uuid.uuid4().hex}", topics.DEAD_LETTERS,
                      DeadLetter, 1000, 10)
    reasons = {decode(Frame, d.payload.encode()).frame_id: d.reason for d in letters if "cam-hostile" in d.payload}
    assert reasons == {
        "hostile-bomb": "the frame is 9000x9000 pixels, more than recognize.max_frame_pixels (33,177,600)",
        "hostile-cut": "the frame's JPEG does not decode (damaged or cut short)",
    }
