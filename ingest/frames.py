"""Turning decoded camera images into :class:`gantry.events.Frame` messages.

Three small rules live here because every source needs them: how a frame is sampled down to the
configured rate, when a frame is skipped because nothing moves, and how the image is shrunk and
re-encoded so that a 4K camera does not put 2 MB messages on the ``frames`` topic.
"""

from __future__ import annotations

import math
from datetime import datetime

import cv2
import numpy as np

from gantry.config import IngestConfig, MotionConfig
from gantry.events import Frame
from gantry.ids import stable_id

_MOTION_WIDTH = 160  # motion is judged on a thumbnail: cheap, and blind to sensor noise


def encode_jpeg(image: np.ndarray, settings: IngestConfig) -> tuple[bytes, int, int]:
    """JPEG bytes, width and height, shrunk (never enlarged) to fit the configured maximum size."""
    height, width = image.shape[:2]
    scale = min(1.0, settings.max_width / width, settings.max_height / height)
    if scale < 1.0:
        width, height = max(1, int(width * scale)), max(1, int(height * scale))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return buffer.tobytes(), width, height


def make_frame(camera_id: str, origin: str, ts: datetime, image: np.ndarray, settings: IngestConfig) -> Frame:
    """A frame whose id depends only on where it came from, so a re-ingest repeats the same ids."""
    jpeg, width, height = encode_jpeg(image, settings)
    return Frame(
        camera_id=camera_id,
        ts=ts,
        frame_id=stable_id(camera_id, origin),
        jpeg=jpeg,
        width=width,
        height=height,
    )


class FpsSampler:
    """Keeps the first frame of each 1/fps time slot, whatever rate the source delivers."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self._last_slot: int | None = None

    def due(self, t_s: float) -> bool:
        slot = math.floor(t_s * self.fps + 1e-9)
        if self._last_slot is not None and slot <= self._last_slot:
            return False
        self._last_slot = slot
        return True


class MotionGate:
    """Says whether a sampled frame shows motion (or follows it within ``hold_s``).

    Each frame is compared with the previous sampled one, so a parked car stops counting as motion
    after one frame; the hold keeps the frames of a vehicle slowing down at the camera.
    """

    def __init__(self, settings: MotionConfig) -> None:
        self.settings = settings
        self._previous: np.ndarray | None = None
        self._last_motion_s: float | None = None

    def open(self, image: np.ndarray, t_s: float) -> bool:
        if not self.settings.enabled:
            return True
        thumb = _thumbnail(image)
        if self._previous is not None and self._previous.shape == thumb.shape:
            changed = cv2.absdiff(thumb, self._previous) > self.settings.pixel_delta
            if np.count_nonzero(changed) / changed.size >= self.settings.min_changed:
                self._last_motion_s = t_s
        self._previous = thumb
        return self._last_motion_s is not None and t_s - self._last_motion_s <= self.settings.hold_s


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height, width = grey.shape
    size = (_MOTION_WIDTH, max(1, height * _MOTION_WIDTH // width))
    return cv2.GaussianBlur(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), (5, 5), 0)
