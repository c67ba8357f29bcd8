"""The hotlist's topic and CSV form, for the ``gantry hotlist`` commands.

The compacted topic *is* the hotlist: an entry is a message keyed ``list:plate``, removing one is
a tombstone under that key (a register like the others, :mod:`stream_jobs.registers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gantry import topics
from gantry.events import HotlistEntry
from sites.holders import holder_problems
from stream_jobs.registers import Register

CSV_FIELDS = ("plate", "list", "reason", "priority", "valid_from", "valid_until", "holder")
HOTLIST = Register(topics.HOTLIST, HotlistEntry, CSV_FIELDS, required=("plate", "list"), across=holder_problems)


def publish(bootstrap_servers: str, entries: Iterable[HotlistEntry]) -> int:
    return HOTLIST.publish(bootstrap_servers, entries)


def retract(bootstrap_servers: str, keys: Iterable[str]) -> None:
    HOTLIST.retract(bootstrap_servers, keys)


def current(bootstrap_servers: str) -> list[HotlistEntry]:
    """The hotlist as it stands: the topic replayed from the beginning to its end now."""
    return HOTLIST.current(bootstrap_servers)


def read_csv(path: Path, existing: Iterable[HotlistEntry] = ()) -> list[HotlistEntry]:
    """Every row of the file as an entry, or :class:`InvalidEvent` listing every bad row by line
    (holders' plates within 2N's limits too, with those of the ``existing`` hotlist,
    :mod:`sites.holders`); one bad row and nothing is imported."""
    return HOTLIST.read_csv(path, existing=existing)


def write_csv(path: Path, entries: Iterable[HotlistEntry]) -> int:
    return HOTLIST.write_csv(path, entries)
