"""Putting frames and batch-imported reads on their topics, and knowing the broker has them.

Frames are keyed by camera so one camera's frames stay in order on one partition; reads are keyed
by plate, like every plate read. A message counts as sent only once the broker acknowledged it
(``acks=all``); :meth:`Publisher.flush` waits for every outstanding acknowledgement and reports
the failures instead of hiding them.
"""

from __future__ import annotations

import logging
from collections import Counter

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from gantry import kafka, topics
from gantry.config import GantryConfig
from gantry.errors import GantryError
from gantry.events import Frame, PlateRead, encode
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


class Publisher:
    def __init__(self, bootstrap_servers: str, connect_timeout_s: float = 10.0) -> None:
        try:
            self._producer = kafka.producer(
                bootstrap_servers, bootstrap_timeout_ms=int(connect_timeout_s * 1000)
            )
        except KafkaError as exc:
            raise GantryError(f"cannot reach the broker at {bootstrap_servers}: {exc}") from None
        self._pending: list[FutureRecordMetadata] = []

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._pending.append(self._producer.send(topic, key=key, value=value))

    def send_frame(self, frame: Frame) -> None:
        self.send(topics.FRAMES, frame.camera_id.encode(), encode(frame))

    def send_read(self, read: PlateRead) -> None:
        self.send(topics.PLATE_READS, read.plate.encode(), encode(read))

    def fire(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Send without tracking, for endless streams: the outcome is only counted and logged."""
        future = self._producer.send(topic, key=key, value=value)
        future.add_callback(lambda metadata: MESSAGES_OUT.labels(STAGE, metadata.topic).inc())
        future.add_errback(self._not_acked)

    def fire_frame(self, frame: Frame) -> None:
        self.fire(topics.FRAMES, frame.camera_id.encode(), encode(frame))

    @staticmethod
    def _not_acked(exc: BaseException) -> None:
        ERRORS.labels(STAGE, "not_acked").inc()
        log.error("message not acknowledged by the broker: %s", exc)

    def flush(self, timeout_s: float = 60.0) -> tuple[Counter[str], int]:
        """Wait for every acknowledgement; returns (acknowledged per topic, failed) since the last flush."""
        self._producer.flush(timeout=timeout_s)
        acked: Counter[str] = Counter()
        failed = 0
        for future in self._pending:
            try:
                acked[future.get(timeout=0).topic] += 1
            except KafkaError as exc:
                failed += 1
                log.error("message not acknowledged by the broker: %s", exc)
        self._pending.clear()
        for topic, count in acked.items():
            MESSAGES_OUT.labels(STAGE, topic).inc(count)
        if failed:
            ERRORS.labels(STAGE, "not_acked").inc(failed)
        return acked, failed

    def close(self) -> None:
        self._producer.close(timeout=10)
