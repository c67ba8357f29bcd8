"""Closing charging days: the day summary the billing export waits for.

Each ``plate_reads`` partition sends its share of a zone's day (a :class:`ZoneDayPart`: its
charges and total) once its reads are past the day's end plus ``allowed_lateness_s`` (see
:mod:`stream_jobs.charges.days`). Parts are keyed by zone, so one zone's days live in one
partition of the internal parts topic, owned by one worker; the day closes, and its
:class:`ZoneDay` is sent, when the parts of all partitions have come. A part that comes again
after a crash, for a day already closed, sends the same summary again (the crash may have lost it).

It runs on the batch runtime like every other job: a consumer group on the parts topic, a zone's
ledger (:class:`ZoneLedger`) per changelog entry, written once per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import orjson
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic

from gantry import topics
from gantry.config import GantryConfig, Zone
from gantry.events import DeadLetter, ZoneDay, ZoneDayPart, encode, now_utc
from gantry.kafka import new_topic
from gantry.observability import MESSAGES_OUT
from stream_jobs.charges.rules import day_summary
from stream_jobs.intake import STAGE, parse_or_report
from stream_jobs.runtime.consumer import paced
from stream_jobs.runtime.state import StatefulBatchConsumer

KEEP_CLOSED_DAYS = 60  # closed days per zone remembered, to send a summary again after a crash


class Share(NamedTuple):
    """One partition's part of an open day."""

    charges: int
    total: Decimal


@dataclass
class ZoneLedger:
    """A zone's open days (the shares come so far, by partition) and its last closed days."""

    open: dict[date, dict[int, Share]] = field(default_factory=dict)
    closed: dict[date, ZoneDay] = field(default_factory=dict)

    def take(self, zone: Zone, part: ZoneDayPart, partitions: int, now: datetime) -> ZoneDay | None:
        """The day's summary once ``part`` completes it (or the day was closed before), else None."""
        day = part.charge_date
        if day not in self.closed:
            shares = self.open.setdefault(day, {})
            shares[part.partition] = Share(part.charges, part.total_amount)
            if len(shares) < partitions:
                return None
            del self.open[day]
            total = sum((s.total for s in shares.values()), Decimal("0"))
            self.closed[day] = day_summary(zone, day, sum(s.charges for s in shares.values()), total, now)
            self.closed = dict(sorted(self.closed.items())[-KEEP_CLOSED_DAYS:])
        return self.closed[day]

    def to_json(self) -> dict:
        """``{"open": {day: {partition: [charges, total]}}, "closed": {day: ZoneDay JSON}}``: the
        form the Faust table this job replaced wrote, so that ledgers saved by it load."""
        return {
            "open": {d.isoformat(): {str(p): [s.charges, str(s.total)] for p, s in shares.items()}
                     for d, shares in self.open.items()},
            "closed": {d.isoformat(): summary.model_dump_json() for d, summary in self.closed.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> ZoneLedger:
        return cls(
            {date.fromisoformat(d): {int(p): Share(int(c), Decimal(t)) for p, (c, t) in shares.items()}
             for d, shares in data["open"].items()},
            {date.fromisoformat(d): ZoneDay.model_validate_json(s) for d, s in data["closed"].items()},
        )


def ledger_key(zone_id: str) -> bytes:
    """A zone's changelog key, JSON-encoded as Faust's table wrote it."""
    return orjson.dumps(f"zone:{zone_id}")


@dataclass
class ClosingState:
    """The ledgers of the zones keyed to one partition of the parts topic, and those changed."""

    ledgers: dict[str, ZoneLedger] = field(default_factory=dict)  # by zone id
    changed: set[str] = field(default_factory=set)

    @classmethod
    def from_entries(cls, entries: Mapping[bytes, bytes]) -> ClosingState:
        return cls({orjson.loads(key).removeprefix("zone:"): ZoneLedger.from_json(orjson.loads(value))
                    for key, value in entries.items()})

    def changes(self) -> dict[bytes, bytes | None]:
        """The changelog entries of the ledgers changed since the last call."""
        entries: dict[bytes, bytes | None] = {ledger_key(zone_id): orjson.dumps(self.ledgers[zone_id].to_json())
                                              for zone_id in self.changed}
        self.changed.clear()
        return entries


def internal_topics(config: GantryConfig) -> list[NewTopic]:
    """The parts the per-plate job sends and this job's changelog, partitioned like ``zone_charges``."""
    partitions = config.broker.partitions_for(topics.ZONE_CHARGES)
    return [new_topic(config, topics.ZONE_DAY_PARTS, partitions),
            new_topic(config, topics.ZONE_DAY_LEDGERS, partitions, compacted=True)]


class DayCloser(StatefulBatchConsumer[ClosingState]):
    group_id = "gantry-jobs-zone-days"
    sources = (topics.ZONE_DAY_PARTS,)
    changelog = topics.ZONE_DAY_LEDGERS
    fetch_max_wait_ms = 250  # a day summary may wait a quarter second

    def __init__(self, bootstrap_servers: str, config: GantryConfig, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.zones = {z.id: z for z in config.zones}
        self.partitions = config.broker.partitions_for(topics.PLATE_READS)  # the parts a day waits for
        self.sent = MESSAGES_OUT.labels(STAGE, topics.ZONE_DAYS)

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        now = now_utc()
        async for record in paced(records):
            part = parse_or_report(ZoneDayPart, record.value, STAGE, topics.ZONE_DAY_PARTS)
            if isinstance(part, DeadLetter):
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(part))
                continue
            zone = self.zones.get(part.zone_id)
            if zone is None:
                continue  # a zone since removed from the configuration: nothing to close
            state = await self.state_of(record.partition)
            ledger = state.ledgers.setdefault(zone.id, ZoneLedger())
            summary = ledger.take(zone, part, self.partitions, now)
            state.changed.add(zone.id)
            if summary is not None:
                await self.outbox.put(topics.ZONE_DAYS, key=zone.id.encode(), value=encode(summary))
                self.sent.inc()
        await self.save()

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> ClosingState:
        return ClosingState.from_entries(entries)

    def changes(self, state: ClosingState) -> dict[bytes, bytes | None]:
        return state.changes()
