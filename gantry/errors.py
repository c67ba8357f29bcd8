"""Gantry's exceptions, all under one base so a caller can catch the family.

    GantryError                 (camera_id, topic, partition, offset where known)
    ├── ConfigError             a configuration file or override is wrong
    ├── InvalidEvent            a message on a topic does not parse or validate
    └── StackError              the embedded stack cannot start, stop or be found

The location fields exist so that one log line says where the trouble came from.
"""

from __future__ import annotations


class GantryError(Exception):
    def __init__(
        self,
        message: str,
        *,
        camera_id: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.camera_id = camera_id
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __str__(self) -> str:
        where = []
        if self.topic is not None:
            where.append(f"{self.topic}[{self.partition}]@{self.offset}")
        if self.camera_id is not None:
            where.append(f"camera {self.camera_id}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class ConfigError(GantryError):
    """The configuration is wrong; the message names the file, line and key to fix."""


class InvalidEvent(GantryError):
    """A message does not parse or validate; it belongs on the dead-letter topic."""


class StackError(GantryError):
    """The embedded stack could not be started, stopped or located."""
