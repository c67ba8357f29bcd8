"""Closing charging days: the day summary the billing export waits for.

Charges are keyed by zone, so one zone's days live on one worker. A zone's watermark is the
latest first-read time among its charges; a day closes once the watermark is
``allowed_lateness_s`` past the day's end, and its summary counts the latest version of every
charge of that day. Closing happens once: the table remembers closed days.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gantry import topics
from gantry.events import ZoneCharge, encode, now_utc
from gantry.observability import MESSAGES_OUT
from stream_jobs.charges.rules import day_end, day_summary
from stream_jobs.intake import STAGE


def register(jobs) -> None:
    app, config = jobs.app, jobs.config
    lateness_s = config.stream_jobs.allowed_lateness_s
    zones = {z.id: z for z in config.zones}
    charges_topic = jobs.topic(topics.ZONE_CHARGES)
    days = app.Table("zone_days", default=dict, partitions=config.broker.partitions_for(topics.ZONE_CHARGES))
    days_topic = jobs.topic(topics.ZONE_DAYS)

    @app.agent(charges_topic, name="zone_days")
    async def close_days(stream) -> None:
        async for raw in stream:
            charge = ZoneCharge.model_validate_json(raw)
            zone = zones.get(charge.zone_id)
            if zone is None:
                continue
            open_key = f"open:{zone.id}"
            open_days = days[open_key]
            day = charge.charge_date.isoformat()
            if day in open_days.get("closed", []):
                continue
            amounts = open_days.get(day, {})
            amounts = amounts | {charge.charge_id: str(charge.amount)}
            watermark = max(open_days.get("watermark", 0.0), charge.first_read_ts.timestamp())
            open_days = open_days | {day: amounts, "watermark": watermark}
            for candidate in sorted(k for k in open_days if k[0].isdigit()):
                if day_end(date.fromisoformat(candidate), zone.tariff).timestamp() + lateness_s <= watermark:
                    summary = day_summary(
                        zone, date.fromisoformat(candidate), [Decimal(a) for a in open_days[candidate].values()], now_utc()
                    )
                    await days_topic.send(key=zone.id.encode(), value=encode(summary))
                    MESSAGES_OUT.labels(STAGE, topics.ZONE_DAYS).inc()
                    open_days = {k: v for k, v in open_days.items() if k != candidate}
                    open_days["closed"] = open_days.get("closed", [])[-30:] + [candidate]
            days[open_key] = open_days
