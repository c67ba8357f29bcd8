"""Closing charging days: the day summary the billing export waits for.

Charges are keyed by zone, so one zone's days live on one worker. A zone's watermark is the
latest first-read time among its charges; a day closes once the watermark is
``allowed_lateness_s`` past the day's end (see :func:`days_to_close`). The table keeps one small
entry per charge (to count each charge once, whatever its versions) and one running total per
open day, so a busy day costs the same per charge at its end as at its start. A closed day
remembers the charge (id and version) that closed it: if that charge is replayed after a crash,
the summary is sent again, unchanged.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from faust.types import EventT

from gantry import topics
from gantry.events import DeadLetter, ZoneCharge, encode, now_utc
from gantry.observability import MESSAGES_OUT
from stream_jobs.batching import BATCH_MAX, BATCH_WITHIN_S, in_partition_of
from stream_jobs.charges.rules import day_summary, days_to_close
from stream_jobs.intake import STAGE, parse_or_report

KEEP_CLOSED_DAYS = 60


def register(jobs) -> None:
    app, config = jobs.app, jobs.config
    lateness_s = config.stream_jobs.allowed_lateness_s
    zones = {z.id: z for z in config.zones}
    charges_topic = jobs.topic(topics.ZONE_CHARGES)
    days = app.Table("zone_days", default=dict, partitions=config.broker.partitions_for(topics.ZONE_CHARGES))
    days_topic = jobs.topic(topics.ZONE_DAYS)
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @app.agent(charges_topic, name="zone_days")
    async def close_days(stream) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            writes: dict[str, tuple[dict, EventT]] = {}  # table entries this batch changed, and where

            def entry(key: str) -> dict:
                return writes[key][0] if key in writes else days[key]

            for event in events:
                charge = parse_or_report(ZoneCharge, event.value, STAGE, topics.ZONE_CHARGES)
                if isinstance(charge, DeadLetter):
                    dead_letters.send_soon(value=encode(charge))
                    continue
                zone = zones.get(charge.zone_id)
                if zone is None:
                    continue  # a zone since removed from the configuration: nothing to close
                ledger = entry(f"zone:{zone.id}") or {"watermark": 0.0, "open": {}, "closed": {}}
                day, this = charge.charge_date.isoformat(), [charge.charge_id, charge.version]
                if day not in ledger["closed"] and not entry(f"charge:{charge.charge_id}"):
                    writes[f"charge:{charge.charge_id}"] = ({"amount": str(charge.amount)}, event)
                    count, total = ledger["open"].get(day, [0, "0"])
                    ledger["open"][day] = [count + 1, str(Decimal(total) + charge.amount)]
                ledger["watermark"] = max(ledger["watermark"], charge.first_read_ts.timestamp())
                for closing in days_to_close([date.fromisoformat(d) for d in ledger["open"]], ledger["watermark"],
                                             zone.tariff, lateness_s):
                    count, total = ledger["open"].pop(closing.isoformat())
                    summary = day_summary(zone, closing, count, Decimal(total), now_utc())
                    ledger["closed"][closing.isoformat()] = {"summary": summary.model_dump_json(), "closer": this}
                for closed in ledger["closed"].values():
                    if closed["closer"] == this:  # closed by this charge now, or before a crash lost the summary
                        days_topic.send_soon(key=zone.id.encode(), value=closed["summary"].encode())
                        MESSAGES_OUT.labels(STAGE, topics.ZONE_DAYS).inc()
                ledger["closed"] = dict(sorted(ledger["closed"].items())[-KEEP_CLOSED_DAYS:])
                writes[f"zone:{zone.id}"] = (ledger, event)
            for key, (value, event) in writes.items():
                with in_partition_of(event):
                    days[key] = value
