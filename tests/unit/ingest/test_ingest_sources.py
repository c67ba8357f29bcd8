"""Sampling, motion gating, JPEG sizing and timestamps of file sources, on rendered footage."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from gantry.config import IngestConfig, MotionConfig
from ingest.frames import FpsSampler, MotionGate, encode_jpeg
from ingest.readers import is_live, redacted
from ingest.sources import SourceError, frames_of, open_source
from ingest.synthetic import Footage, write_images, write_video

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_sampler_keeps_one_frame_per_slot() -> None:
    sampler = FpsSampler(2.0)
    kept = [i for i in range(50) if sampler.due(i / 25)]  # 2 s of 25 fps video
    assert kept == [0, 13, 25, 38]


def test_motion_gate_is_closed_on_a_still_picture_and_opens_on_change() -> None:
    gate = MotionGate(MotionConfig(hold_s=0.0))
    still = np.full((120, 160, 3), 100, np.uint8)
    moved = still.copy()
    moved[40:80, 40:80] = 250
    assert [gate.open(still, 0.0), gate.open(still, 0.5), gate.open(moved, 1.0), gate.open(moved, 1.5)] == [
        False,
        False,
        True,
        False,
    ]


def test_motion_gate_holds_after_motion() -> None:
    gate = MotionGate(MotionConfig(hold_s=1.0))
    still = np.full((120, 160, 3), 100, np.uint8)
    moved = still.copy()
    moved[:60] = 0
    opened = [
        gate.open(img, t) for img, t in [(still, 0), (moved, 1), (moved, 1.5), (moved, 2), (moved, 2.5)]
    ]
    assert opened == [False, True, True, True, False]


def test_jpeg_is_shrunk_to_the_maximum_size_keeping_aspect() -> None:
    image = np.zeros((2160, 3840, 3), np.uint8)
    jpeg, width, height = encode_jpeg(image, IngestConfig(max_width=1280, max_height=720))
    assert (width, height) == (1280, 720)
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (720, 1280, 3)


def test_jpeg_quality_changes_the_size() -> None:
    image = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    small, _, _ = encode_jpeg(image, IngestConfig(jpeg_quality=20))
    large, _, _ = encode_jpeg(image, IngestConfig(jpeg_quality=95))
    assert len(small) < len(large) / 2


def test_video_sampled_and_timed_from_start(tmp_path: Path) -> None:
    footage = Footage(seconds=4, fps=25)
    video = write_video(tmp_path / "street.avi", footage)
    source = open_source(video, fps=2, start=START)
    frames = list(frames_of(source, "c1", IngestConfig()))
    assert source.expected == len(frames) == 8
    assert [f.ts for f in frames] == [
        START + timedelta(milliseconds=i * 500 + (i % 2) * 20) for i in range(8)
    ]
    assert len({f.frame_id for f in frames}) == 8
    assert frames[0].width == 640 and frames[0].jpeg.startswith(b"\xff\xd8")


def test_motion_gating_keeps_only_frames_with_the_car(tmp_path: Path) -> None:
    footage = Footage(seconds=6, fps=25, car_from_s=2, car_to_s=4)
    video = write_video(tmp_path / "street.avi", footage)
    gated = list(open_source(video, fps=5, motion=MotionConfig(hold_s=0)).captures)
    times = [float(c.origin.rsplit("#", 1)[1]) / footage.fps for c in gated]
    assert times and all(2.0 <= t <= 4.2 for t in times)
    assert 8 <= len(gated) <= 11  # 2 s of motion at 5 fps, plus the frame where the car has just left


def test_frame_ids_are_stable_across_reingest(tmp_path: Path) -> None:
    video = write_video(tmp_path / "street.avi", Footage(seconds=1))
    first = [f.frame_id for f in frames_of(open_source(video, fps=4), "c1", IngestConfig())]
    again = [f.frame_id for f in frames_of(open_source(video, fps=4), "c1", IngestConfig())]
    other_camera = [f.frame_id for f in frames_of(open_source(video, fps=4), "c2", IngestConfig())]
    assert first == again and not set(first) & set(other_camera)


def test_image_folder_in_name_order_timed_by_start_and_fps(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "snaps", 3)
    paths[0].rename(tmp_path / "snaps" / "snap-99999.jpg")  # now the last by name
    source = open_source(tmp_path / "snaps", fps=0.5, start=START)
    frames = list(frames_of(source, "c1", IngestConfig()))
    assert [f.ts for f in frames] == [START, START + timedelta(seconds=2), START + timedelta(seconds=4)]
    assert source.expected == 3


def test_image_without_start_takes_the_file_time(tmp_path: Path) -> None:
    (path,) = write_images(tmp_path, 1)
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    (frame,) = frames_of(open_source(path, fps=1), "c1", IngestConfig())
    assert frame.ts == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.avi", "no such file"), ("notes.txt", "not an image or a video"), ("empty", "no images")],
)
def test_unusable_paths_are_named(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=message) as err:
        open_source(tmp_path / name, fps=1)
    assert name in str(err.value)


def test_corrupt_video_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="broken.avi"):
        open_source(bad, fps=1)


def test_stream_credentials_never_reach_the_logs() -> None:
    assert redacted("rtsp://admin:pa55@10.0.0.9:554/Streaming/1") == "rtsp://***@10.0.0.9:554/Streaming/1"
    assert redacted("http://10.0.0.9/video.mjpg") == "http://10.0.0.9/video.mjpg"


def test_files_are_not_live_streams() -> None:
    assert is_live("rtsp://10.0.0.9/1") and is_live("http://cam/video.mjpg")
    assert not is_live("/data/c1.avi") and not is_live("file:///data/c1.avi")
