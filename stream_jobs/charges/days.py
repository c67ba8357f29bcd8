"""When a charging day is over: each partition reports its share, the day closes on all shares.

A zone's charges come from every ``plate_reads`` partition, and partitions do not progress in
step: a backlog, a restart or a rebalance can leave one hours of event time behind another. So
the day cannot close on the latest charge seen. Instead, each partition's per-plate job keeps a
running count and total of its own charges per zone and day, and sends them as a
:class:`~gantry.events.ZoneDayPart` when its watermark passes the day's end plus
``allowed_lateness_s`` (after which any read of that day is late there, so the share is final).
The day closes when the parts of all partitions have come (``charges/agents.py``); a partition
with no charge that day still sends its (empty) part.

A partition that never receives a read holds its days open: in a city every partition gets
reads, and for a small deployment fewer partitions do the job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from gantry.config import Zone
from gantry.events import ZoneCharge, ZoneDayPart
from stream_jobs.charges.rules import day_end, local_day

KEEP_REPORTED = 60  # days per zone whose part is remembered, to send it again after a crash
FIRST_LOOK_BACK = timedelta(days=1)  # a partition's first read also closes the day before it


ZoneDate = tuple[str, date]  # (zone_id, local charging day)


class SentPart(NamedTuple):
    """A day's part as sent, and the read whose watermark sent it (a replay of it sends it again)."""

    read_id: str
    part: ZoneDayPart


@dataclass
class DayLedger:
    """One partition's charges per open zone-day, and the parts it has sent."""

    open: dict[ZoneDate, dict[str, Decimal]] = field(default_factory=dict)  # charge_id -> amount, per open day
    sent: dict[ZoneDate, SentPart] = field(default_factory=dict)
    changed: bool = False
    next_close_ms: int = 0  # when the next day closes: until then a read only checks this

    def record(self, charge: ZoneCharge) -> None:
        self.open.setdefault((charge.zone_id, charge.charge_date), {})[charge.charge_id] = charge.amount
        self.changed = True

    def withdraw(self, charge_ids: Iterable[str]) -> None:
        """Leave these charges out of the open days (their plate was erased)."""
        for amounts in self.open.values():
            for charge_id in charge_ids:
                if amounts.pop(charge_id, None) is not None:
                    self.changed = True

    def advance(self, zones: list[Zone], partition: int, before_ms: int, after_ms: int,
                lateness_ms: int, read_id: str) -> list[ZoneDayPart]:
        """The parts of the days whose end plus the lateness the watermark has just passed."""
        if before_ms and after_ms < self.next_close_ms:
            return []
        if not before_ms:
            before_ms = after_ms - int(FIRST_LOOK_BACK.total_seconds() * 1000)
        parts = []
        self.next_close_ms = min((_next_close(zone, after_ms, lateness_ms) for zone in zones), default=0)
        for zone in zones:
            for day in _days_closing(zone, before_ms, after_ms, lateness_ms):
                amounts = self.open.pop((zone.id, day), {})
                part = ZoneDayPart(zone_id=zone.id, charge_date=day, partition=partition, charges=len(amounts),
                                   total_amount=sum(amounts.values(), Decimal("0.00")))
                self.sent[(zone.id, day)] = SentPart(read_id, part)
                parts.append(part)
        if parts:
            self.sent = dict(sorted(self.sent.items(), key=lambda kv: kv[0][1])[-KEEP_REPORTED * len(zones):])
            self.changed = True
        return parts

    def sent_by(self, read_id: str) -> list[ZoneDayPart]:
        """The parts this read's watermark sent: a replay of it sends them again."""
        return [sent.part for sent in self.sent.values() if sent.read_id == read_id]

    def to_json(self) -> dict:
        """In the changelog, keyed ``zone|date``: ``{charge_id: amount}`` per open day and
        ``[read_id, part JSON]`` per part sent."""
        return {
            "open": {_key(day): {c: str(a) for c, a in amounts.items()} for day, amounts in self.open.items()},
            "sent": {_key(day): [sent.read_id, sent.part.model_dump_json()] for day, sent in self.sent.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> DayLedger:
        return cls(
            {_zone_date(key): {c: Decimal(a) for c, a in amounts.items()} for key, amounts in data["open"].items()},
            {_zone_date(key): SentPart(by, ZoneDayPart.model_validate_json(part)) for key, (by, part) in data["sent"].items()},
        )


def _key(day: ZoneDate) -> str:
    return f"{day[0]}|{day[1].isoformat()}"


def _zone_date(key: str) -> ZoneDate:
    zone_id, day = key.rsplit("|", 1)
    return zone_id, date.fromisoformat(day)


def _closes_ms(day: date, zone: Zone, lateness_ms: int) -> int:
    return int(day_end(day, zone.tariff).timestamp() * 1000) + lateness_ms


def _local_day(ms: int, zone: Zone) -> date:
    return local_day(datetime.fromtimestamp(ms / 1000, UTC), zone.tariff)


def _days_closing(zone: Zone, before_ms: int, after_ms: int, lateness_ms: int) -> list[date]:
    """Local days of the zone whose end plus the lateness falls in (before_ms, after_ms]."""
    first = _local_day(before_ms - lateness_ms, zone) - timedelta(days=1)
    days = [first + timedelta(days=n) for n in range((_local_day(after_ms - lateness_ms, zone) - first).days + 1)]
    return [d for d in days if before_ms < _closes_ms(d, zone, lateness_ms) <= after_ms]


def _next_close(zone: Zone, after_ms: int, lateness_ms: int) -> int:
    day = _local_day(after_ms - lateness_ms, zone)
    return min(c for c in (_closes_ms(day, zone, lateness_ms), _closes_ms(day + timedelta(days=1), zone, lateness_ms))
               if c > after_ms)
