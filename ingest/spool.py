"""A bounded on-disk queue for events accepted while the broker is unreachable.

An edge camera was told "accepted", so its event must survive a broker outage and a restart of
``gantry ingest serve``. Each event is one file named by a sequence number, written to a temporary
name, flushed to disk and renamed, so a crash leaves either the whole event or none of it; the
files replay in name order, which is arrival order. The bounds (events and bytes) make a long
outage answer "503, retry later" rather than fill the disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_SUFFIX = ".event"


class SpoolFull(Exception):
    """The spool is at its limit; the caller should answer 503 with Retry-After."""


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    topic: str
    key: bytes
    value: bytes

    def to_bytes(self) -> bytes:
        return f"{self.topic}\n{len(self.key)}\n".encode() + self.key + self.value

    @classmethod
    def from_bytes(cls, seq: int, data: bytes) -> SpooledEvent:
        topic, key_length, rest = data.split(b"\n", 2)
        size = int(key_length)
        return cls(seq, topic.decode(), rest[:size], rest[size:])


class Spool:
    def __init__(self, directory: Path, max_bytes: int, max_events: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_events = max_events
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):  # a write that a crash interrupted: never acknowledged
            stale.unlink()
        self._sizes = {int(p.stem): p.stat().st_size for p in directory.glob(f"*{_SUFFIX}")}
        self._bytes = sum(self._sizes.values())
        self._next_seq = max(self._sizes, default=0) + 1

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, topic: str, key: bytes, value: bytes) -> int:
        """Store durably, or raise :class:`SpoolFull`; returns the event's sequence number."""
        event = SpooledEvent(self._next_seq, topic, key, value)
        data = event.to_bytes()
        if len(self._sizes) >= self.max_events or self.size_bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} is full ({len(self)} events, {self.size_bytes} bytes)")
        temporary = self.directory / f"{event.seq:020d}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(self._path(event.seq))
        self._sizes[event.seq] = len(data)
        self._bytes += len(data)
        self._next_seq += 1
        return event.seq

    def head(self, limit: int) -> list[SpooledEvent]:
        """The oldest events, in arrival order."""
        return [
            SpooledEvent.from_bytes(seq, self._path(seq).read_bytes()) for seq in sorted(self._sizes)[:limit]
        ]

    def remove(self, seq: int) -> None:
        self._path(seq).unlink(missing_ok=True)
        self._bytes -= self._sizes.pop(seq, 0)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{_SUFFIX}"
