"""Pairing a plate's passages through a car park's gates into stays.

The parking job keeps each plate's recent passages (the gate decisions that let it through) and
pairs them again whenever one arrives, so the answer never depends on the order reads came in:

* passages are sorted by time; the same read twice, or a second read in the same direction
  within ``dedup_s`` of the first (a camera that looked twice), is one passage;
* an entry followed by an exit is a ``closed`` stay, priced by the tariff (until the payment the
  exit's decision counted, when the car left within the grace minutes after paying);
* an entry followed by another entry lost its exit read: ``exit_missed``, the lost-exit fee;
* an exit with no entry before it lost its entry read: ``entry_missed``, the lost-entry fee;
* the last entry, with no exit yet, is the ``open`` stay (fee 0 until it leaves), an overstay
  once it is older than the car park's ``max_stay_hours``.

A stay is free when its entry or exit passed on a free-parking list. Each stay's id comes from
its entry read (its exit read when the entry is missing), so an open stay keeps its id when it
closes, and a stay a late read pairs otherwise gets a new id (the job withdraws the old one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from gantry.ids import stable_id
from gantry.site_events import SessionStatus
from gantry.sites import CarPark
from sites.tariff import ZERO, charged_until, missed_entry_fee, missed_exit_fee, stay_fee

Direction = Literal["entry", "exit"]


@dataclass(frozen=True, order=True)
class Passage:
    ts: datetime
    read_id: str
    direction: Direction
    list: str | None = None  # the list the decision matched
    paid_at: datetime | None = field(default=None, compare=False)  # exit: the payment its decision counted


@dataclass(frozen=True)
class Stay:
    session_id: str
    status: SessionStatus
    entry: Passage | None
    exit: Passage | None
    fee: Decimal
    free_list: str | None
    overstay: bool

    @property
    def duration_s(self) -> float | None:
        if self.entry is None or self.exit is None:
            return None
        return (self.exit.ts - self.entry.ts).total_seconds()

    @property
    def ends(self) -> datetime:
        last = self.exit or self.entry
        assert last is not None
        return last.ts


def distinct(passages: list[Passage], dedup_s: float) -> list[Passage]:
    """Sorted, without repeats: one passage per read id, and a same-direction read within
    ``dedup_s`` of the one before it is the same passage (the earliest stays)."""
    kept: list[Passage] = []
    seen: set[str] = set()
    for passage in sorted(passages):
        if passage.read_id in seen:
            continue
        seen.add(passage.read_id)
        if kept and kept[-1].direction == passage.direction and (passage.ts - kept[-1].ts).total_seconds() <= dedup_s:
            continue
        kept.append(passage)
    return kept


def session_id(car_park: str, plate: str, entry: Passage | None, exit_: Passage | None) -> str:
    anchor = entry if entry is not None else exit_
    assert anchor is not None
    return stable_id("parking", car_park, plate, anchor.direction, anchor.read_id)


def pair(plate: str, park: CarPark, passages: list[Passage], free_lists: frozenset[str], *,
         now: datetime, dedup_s: float = 60.0) -> list[Stay]:
    """The stays of one plate at one car park, oldest first; ``now`` (the job's watermark)
    decides whether the open stay is an overstay."""
    max_stay = timedelta(hours=park.max_stay_hours)

    def stay(status: SessionStatus, entry: Passage | None, exit_: Passage | None) -> Stay:
        free = next((p.list for p in (entry, exit_) if p is not None and p.list in free_lists), None)
        if free is not None or status == "open":
            fee = ZERO
        elif status == "closed":
            assert entry is not None and exit_ is not None
            fee = stay_fee(entry.ts, charged_until(exit_.ts, exit_.paid_at, park.tariff.exit_grace_minutes), park)
        else:
            fee = missed_exit_fee(park) if status == "exit_missed" else missed_entry_fee(park)
        until = exit_.ts if exit_ is not None else now
        overstay = entry is not None and status in ("open", "closed") and until - entry.ts > max_stay
        return Stay(session_id(park.id, plate, entry, exit_), status, entry, exit_, fee, free, overstay)

    stays: list[Stay] = []
    inside: Passage | None = None
    for passage in distinct(passages, dedup_s):
        if passage.direction == "entry":
            if inside is not None:
                stays.append(stay("exit_missed", inside, None))
            inside = passage
        elif inside is not None:
            stays.append(stay("closed", inside, passage))
            inside = None
        else:
            stays.append(stay("entry_missed", None, passage))
    if inside is not None:
        stays.append(stay("open", inside, None))
    return stays
