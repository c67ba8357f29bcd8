"""Closing charging days: the day summary the billing export waits for.

Each ``plate_reads`` partition sends its share of a zone's day (a :class:`ZoneDayPart`: its
charges and total) once its reads are past the day's end plus ``allowed_lateness_s`` (see
:mod:`stream_jobs.charges.days`). Parts are keyed by zone, so one zone's days live on one
worker; the day closes, and its :class:`ZoneDay` is sent, when the parts of all partitions have
come. A part that comes again after a crash, for a day already closed, sends the same summary
again (the crash may have lost it).

Day closing sees one message per zone, day and partition, so it stays a Faust agent.
"""

from __future__ import annotations

from decimal import Decimal

from faust.types import EventT

from gantry import topics
from gantry.events import DeadLetter, ZoneDayPart, encode, now_utc
from gantry.observability import MESSAGES_OUT
from stream_jobs.batching import BATCH_MAX, BATCH_WITHIN_S, in_partition_of
from stream_jobs.charges.rules import day_summary
from stream_jobs.intake import STAGE, parse_or_report
from stream_jobs.tracking import ZONE_DAY_PARTS

KEEP_CLOSED_DAYS = 60


def register(jobs) -> None:
    app, config = jobs.app, jobs.config
    zones = {z.id: z for z in config.zones}
    partitions = config.broker.partitions_for(topics.PLATE_READS)
    days = app.Table("zone_days", default=dict, partitions=config.broker.partitions_for(topics.ZONE_CHARGES))
    days_topic = jobs.topic(topics.ZONE_DAYS)
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @app.agent(jobs.topic(ZONE_DAY_PARTS), name="zone_days")
    async def close_days(stream) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            writes: dict[str, tuple[dict, EventT]] = {}  # zone ledgers this batch changed, and where
            for event in events:
                part = parse_or_report(ZoneDayPart, event.value, STAGE, ZONE_DAY_PARTS)
                if isinstance(part, DeadLetter):
                    dead_letters.send_soon(value=encode(part))
                    continue
                zone = zones.get(part.zone_id)
                if zone is None:
                    continue  # a zone since removed from the configuration: nothing to close
                key = f"zone:{zone.id}"
                ledger = writes[key][0] if key in writes else (days[key] or {"open": {}, "closed": {}})
                day = part.charge_date.isoformat()
                if day not in ledger["closed"]:
                    shares = ledger["open"].setdefault(day, {})
                    shares[str(part.partition)] = [part.charges, str(part.total_amount)]
                    if len(shares) < partitions:
                        writes[key] = (ledger, event)
                        continue
                    del ledger["open"][day]
                    summary = day_summary(zone, part.charge_date, sum(c for c, _ in shares.values()),
                                          sum((Decimal(t) for _, t in shares.values()), Decimal("0")), now_utc())
                    ledger["closed"][day] = summary.model_dump_json()
                    ledger["closed"] = dict(sorted(ledger["closed"].items())[-KEEP_CLOSED_DAYS:])
                    writes[key] = (ledger, event)
                if day in ledger["closed"]:  # just closed, or a part sent again after a crash
                    days_topic.send_soon(key=zone.id.encode(), value=ledger["closed"][day].encode())
                    MESSAGES_OUT.labels(STAGE, topics.ZONE_DAYS).inc()
            for key, (value, event) in writes.items():
                with in_partition_of(event):
                    days[key] = value
