"""A bounded on-disk queue for events accepted while the broker is unreachable.

An edge camera was told "accepted", so its event must survive a broker outage and a restart of
``gantry ingest serve``. Each event is one file named by a sequence number, written to a temporary
name, flushed to disk and renamed, so a crash leaves either the whole event or none of it; the
files replay in name order, which is arrival order. The bounds (events and bytes) make a long
outage answer "503, retry later" rather than fill the disk.

A file's header gives the lengths of the key and the value, so a file cut short afterwards (a
failing disk, a partial copy) is found out rather than replayed as a broken event. Such a file,
and anything else named ``*.event`` that is not a spool event, goes to the :class:`Quarantine`
with the reason: no file can stop start-up or the replay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gantry.config import GantryConfig
from ingest.quarantine import Cause, Quarantine

_SUFFIX = ".event"


def spool_dir(config: GantryConfig) -> Path:
    return config.ingest.spool_dir or config.data_dir / "ingest-spool"


def quarantine_of(directory: Path) -> Quarantine:
    """The quarantine of the spool in ``directory``: a folder inside it, so setting aside is a rename."""
    return Quarantine(directory / "quarantine")


class SpoolFull(Exception):
    """The spool is at its limit; the caller should answer 503 with Retry-After."""


class UnreadableEvent(ValueError):
    """A spool file that does not hold one whole event."""


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    topic: str
    key: bytes
    value: bytes

    def to_bytes(self) -> bytes:
        return f"{self.topic}\n{len(self.key)}\n{len(self.value)}\n".encode() + self.key + self.value

    @classmethod
    def from_bytes(cls, seq: int, data: bytes) -> SpooledEvent:
        try:
            topic, key_length, value_length, rest = data.split(b"\n", 3)
            sizes = int(key_length), int(value_length)
            name = topic.decode()
        except ValueError:
            raise UnreadableEvent("no spool header (topic, key length, value length)") from None
        if min(sizes) < 0 or len(rest) != sum(sizes):
            raise UnreadableEvent(f"truncated or corrupt: the header announces {sum(sizes)} bytes, {len(rest)} follow")
        return cls(seq, name, rest[: sizes[0]], rest[sizes[0] :])


class Spool:
    def __init__(self, directory: Path, max_bytes: int, max_events: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.quarantine = quarantine_of(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):  # a write that a crash interrupted: never acknowledged
            stale.unlink()
        self._sizes: dict[int, int] = {}
        for path in directory.glob(f"*{_SUFFIX}"):
            if path.stem.isascii() and path.stem.isdigit() and path.is_file():
                self._sizes[int(path.stem)] = path.stat().st_size
            else:
                self.quarantine.hold(path, "unreadable", f"{path.name}: not a spool event (<number>{_SUFFIX})")
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
        """The oldest events, in arrival order; a file that holds no whole event is set aside on the way."""
        events = []
        for seq in sorted(self._sizes)[:limit]:
            try:
                events.append(SpooledEvent.from_bytes(seq, self._path(seq).read_bytes()))
            except UnreadableEvent as exc:
                self.set_aside(seq, "unreadable", f"{self._path(seq).name}: {exc}")
        return events

    def remove(self, seq: int) -> None:
        self._path(seq).unlink(missing_ok=True)
        self._forget(seq)

    def set_aside(self, seq: int, cause: Cause, reason: str) -> Path:
        """Move the event to the quarantine; returns where it is now."""
        self._forget(seq)
        return self.quarantine.hold(self._path(seq), cause, reason)

    def _forget(self, seq: int) -> None:
        self._bytes -= self._sizes.pop(seq, 0)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{_SUFFIX}"
