"""Putting frames on the ``frames`` topic and knowing the broker has them.

Frames are keyed by camera so one camera's frames stay in order on one partition. A frame counts
as sent only once the broker acknowledged it (``acks=all``); :meth:`FramePublisher.flush` waits
for every outstanding acknowledgement and reports the failures instead of hiding them.
"""

from __future__ import annotations

import logging

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from gantry import kafka, topics
from gantry.config import GantryConfig
from gantry.errors import GantryError
from gantry.events import Frame, encode
from gantry.observability import ERRORS, MESSAGES_OUT

log = logging.getLogger(__name__)
STAGE = "ingest"


class UnknownCamera(GantryError):
    """A camera id that the configuration does not list."""


def check_camera(config: GantryConfig, camera_id: str) -> None:
    """Cameras must be configured, except in a configuration that lists none (a quick start)."""
    if config.cameras and config.camera(camera_id) is None:
        known = ", ".join(c.id for c in config.cameras)
        raise UnknownCamera(f"unknown camera {camera_id!r}: not in the configuration's cameras ({known})")


class FramePublisher:
    def __init__(self, bootstrap_servers: str, connect_timeout_s: float = 10.0) -> None:
        try:
            self._producer = kafka.producer(bootstrap_servers, bootstrap_timeout_ms=int(connect_timeout_s * 1000))
        except KafkaError as exc:
            raise GantryError(f"cannot reach the broker at {bootstrap_servers}: {exc}") from None
        self._pending: list[FutureRecordMetadata] = []

    def send(self, frame: Frame) -> None:
        future = self._producer.send(topics.FRAMES, key=frame.camera_id.encode(), value=encode(frame))
        self._pending.append(future)

    def flush(self, timeout_s: float = 60.0) -> tuple[int, int]:
        """Wait for every acknowledgement; returns (acknowledged, failed) since the last flush."""
        self._producer.flush(timeout=timeout_s)
        acked = failed = 0
        for future in self._pending:
            try:
                future.get(timeout=0)
                acked += 1
            except KafkaError as exc:
                failed += 1
                log.error("frame not acknowledged by the broker: %s", exc)
        self._pending.clear()
        MESSAGES_OUT.labels(STAGE, topics.FRAMES).inc(acked)
        if failed:
            ERRORS.labels(STAGE, "frame_not_acked").inc(failed)
        return acked, failed

    def close(self) -> None:
        self._producer.close(timeout=10)
