"""Files Gantry can ingest: single images, image folders (batch and backfill) and video files.

Each source yields :class:`Captured` images with their event time; :func:`frames_of` turns them
into ``Frame`` messages. Timestamps: a video frame is the start time plus its position in the
video; an image is its file's modification time, or, with a start time, start + n / fps in name
order, which is how a backfill of a folder of numbered snapshots gets a usable clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from gantry.config import IngestConfig, MotionConfig
from gantry.events import Frame
from ingest.frames import FpsSampler, MotionGate, make_frame

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"})


class SourceError(ValueError):
    """A file that cannot be ingested; the message names it."""


@dataclass(frozen=True)
class Captured:
    origin: str  # what identifies this image for good: the image file, or the video file and frame index
    ts: datetime
    image: np.ndarray


@dataclass
class FileSource:
    """One image, folder or video, with how many frames it is expected to give (for progress)."""

    path: Path
    kind: str  # "images" or "video"
    expected: int
    captures: Iterator[Captured]


def open_source(
    path: Path, *, fps: float, start: datetime | None = None, motion: MotionConfig | None = None
) -> FileSource:
    """Open ``path`` as an image, an image folder or a video; ``motion`` gates video frames."""
    if path.is_dir():
        images = image_files(path)
        if not images:
            raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        return FileSource(path, "images", len(images), read_images(images, fps=fps, start=start))
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return FileSource(path, "images", 1, read_images([path], fps=fps, start=start))
    if suffix in VIDEO_SUFFIXES:
        capture = _open_video(path)
        source_fps = capture.get(cv2.CAP_PROP_FPS) or fps
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        expected = max(1, round(count / source_fps * min(fps, source_fps))) if count > 0 else 0
        gate = MotionGate(motion) if motion else None
        origin = str(path.resolve())
        captures = read_video(capture, origin, fps=fps, start=start or datetime.now(UTC), gate=gate)
        return FileSource(path, "video", expected, captures)
    raise SourceError(f"{path}: not an image or a video file (unknown suffix {suffix or '(none)'!r})")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_images(paths: list[Path], *, fps: float, start: datetime | None) -> Iterator[Captured]:
    for position, path in enumerate(paths):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: not a readable image")
        if start is not None:
            ts = start + timedelta(seconds=position / fps)
        else:
            ts = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        yield Captured(str(path.resolve()), ts, image)


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"{path}: OpenCV cannot open this video")
    return capture


def read_video(
    capture: cv2.VideoCapture, origin: str, *, fps: float, start: datetime, gate: MotionGate | None = None
) -> Iterator[Captured]:
    """Sampled (and, with a gate, motion-gated) frames of a video file, timed from ``start``."""
    source_fps = capture.get(cv2.CAP_PROP_FPS) or fps
    sampler = FpsSampler(fps)
    position = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            offset_s = position / source_fps
            if sampler.due(offset_s) and (gate is None or gate.open(image, offset_s)):
                yield Captured(f"{origin}#{position}", start + timedelta(seconds=offset_s), image)
            position += 1
    finally:
        capture.release()


def frames_of(source: FileSource, camera_id: str, settings: IngestConfig) -> Iterator[Frame]:
    for captured in source.captures:
        yield make_frame(camera_id, captured.origin, captured.ts, captured.image, settings)
