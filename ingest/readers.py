"""``gantry ingest run``: one supervised reader per camera that Gantry reads video from itself.

A reader opens its source with OpenCV (RTSP, HTTP MJPEG, or a video file), samples frames to the
camera's rate, drops frames while nothing moves, and publishes the rest. Cameras drop off the
network all the time, so a reader never gives up on a stream: it reopens it with exponential
backoff, logs one line per outage and counts outages in ``gantry_ingest_camera_outages``; a
camera's trouble never touches another camera's thread.

A live stream is timed by the wall clock; a video file by its own frame positions (it is read as
fast as it decodes, from the time the reader started, and the reader ends with the file).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
from prometheus_client import Counter, Gauge

from gantry.config import IngestConfig, StreamSource
from gantry.events import Frame
from ingest.frames import FpsSampler, MotionGate, make_frame

log = logging.getLogger(__name__)

OUTAGES = Counter(
    "gantry_ingest_camera_outages", "Times a camera's stream could not be opened or broke", ["camera"]
)
FRAMES = Counter(
    "gantry_ingest_frames", "Decoded frames by what became of them", ["camera", "outcome"]
)  # outcome: sent, still (motion gate), skipped (sampling)
CAMERA_UP = Gauge("gantry_ingest_camera_up", "1 while the camera's stream delivers frames", ["camera"])


def is_live(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def redacted(url: str) -> str:
    """The URL without its user:password, fit for logs (cameras often carry credentials in it)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return urlunsplit(
        parts._replace(netloc=f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    )


class CameraReader(threading.Thread):
    def __init__(
        self,
        camera_id: str,
        source: StreamSource,
        settings: IngestConfig,
        publish: Callable[[Frame], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"camera-{camera_id}", daemon=True)
        self.camera_id = camera_id
        self.url = source.url.removeprefix("file://")
        self.fps = source.fps or settings.fps
        self.settings = settings
        self.publish = publish
        self.stop_event = stop
        self.live = is_live(source.url)
        # Same origin as `gantry ingest file` for a file, so both give a frame the same id.
        self.origin = self.url if self.live else str(Path(self.url).resolve())
        self.shown_url = redacted(self.url)

    def run(self) -> None:
        backoff = self.settings.reconnect_backoff_s
        while not self.stop_event.is_set():
            capture = cv2.VideoCapture(self.url)
            if not capture.isOpened():
                self._outage(f"cannot open {self.shown_url}", backoff)
            else:
                try:
                    delivered = self._read(capture)
                except Exception:  # a supervisor: a bad frame or a full producer must not end the camera
                    log.exception("camera %s: reader failed", self.camera_id)
                    delivered = 0
                finally:
                    capture.release()
                if not self.live and delivered:
                    log.info("camera %s: end of %s", self.camera_id, self.shown_url)
                    return
                if delivered:
                    backoff = self.settings.reconnect_backoff_s  # it worked for a while: start over
                self._outage(f"stream {self.shown_url} ended or broke", backoff)
            if self.stop_event.wait(backoff):
                return
            backoff = min(backoff * 2, self.settings.reconnect_backoff_max_s)

    def _outage(self, what: str, backoff: float) -> None:
        OUTAGES.labels(self.camera_id).inc()
        CAMERA_UP.labels(self.camera_id).set(0)
        log.warning("camera %s: %s; retrying in %.1f s", self.camera_id, what, backoff)

    def _read(self, capture: cv2.VideoCapture) -> int:
        """Read until the stream ends or breaks; returns how many frames it decoded."""
        sampler, gate = FpsSampler(self.fps), MotionGate(self.settings.motion)
        source_fps = capture.get(cv2.CAP_PROP_FPS) or self.fps
        started, started_mono = datetime.now(UTC), time.monotonic()
        decoded = 0
        while not self.stop_event.is_set():
            ok, image = capture.read()
            if not ok:
                break
            if decoded == 0:
                CAMERA_UP.labels(self.camera_id).set(1)
                log.info("camera %s: receiving %s", self.camera_id, self.shown_url)
            offset_s = time.monotonic() - started_mono if self.live else decoded / source_fps
            decoded += 1
            if not sampler.due(offset_s):
                FRAMES.labels(self.camera_id, "skipped").inc()
            elif not gate.open(image, offset_s):
                FRAMES.labels(self.camera_id, "still").inc()
            else:
                ts = started + timedelta(seconds=offset_s)
                origin = f"{self.url}@{ts.isoformat()}" if self.live else f"{self.origin}#{decoded - 1}"
                self.publish(make_frame(self.camera_id, origin, ts, image, self.settings))
                FRAMES.labels(self.camera_id, "sent").inc()
        return decoded


def start_readers(
    streams: dict[str, StreamSource],
    settings: IngestConfig,
    publish: Callable[[Frame], None],
    stop: threading.Event,
) -> list[CameraReader]:
    readers = [CameraReader(camera, source, settings, publish, stop) for camera, source in streams.items()]
    for reader in readers:
        reader.start()
    return readers
