"""Segment statistics: journeys, keyed by segment, summarised per event-time interval.

Each interval's statistics are re-sent whenever journeys join it (once per batch of journeys),
with the same ``stats_id``, so a dashboard always shows the current figures and the warehouse
keeps the latest row; a journey replayed after a crash is recognised by its id, changes nothing and re-sends the
interval's current figures (the crash may have lost them).
"""

from __future__ import annotations

from datetime import datetime

from faust.types import EventT

from gantry import topics
from gantry.events import DeadLetter, Journey, encode
from gantry.observability import MESSAGES_OUT
from stream_jobs.batching import BATCH_MAX, BATCH_WITHIN_S, in_partition_of
from stream_jobs.intake import STAGE, parse_or_report
from stream_jobs.journeys.rules import interval_start, segment_stats, summarise


def register(jobs) -> None:
    app, settings = jobs.app, jobs.config.stream_jobs
    interval_s = settings.stats_interval_s
    journeys = jobs.topic(topics.JOURNEYS)
    intervals = app.Table("segment_intervals", default=dict, partitions=jobs.config.broker.partitions_for(topics.JOURNEYS))
    stats_topic = jobs.topic(topics.SEGMENT_STATS)
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @app.agent(journeys, name="segment_stats")
    async def summarise_segments(stream) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            members_of: dict[str, dict] = {}  # the intervals this batch touched: current members
            grown: dict[str, EventT] = {}  # ... those it added journeys to, with the last such event
            for event in batch:
                journey = parse_or_report(Journey, event.value, STAGE, topics.JOURNEYS)
                if isinstance(journey, DeadLetter):
                    dead_letters.send_soon(value=encode(journey))
                    continue
                key = f"{journey.segment_id}|{interval_start(journey.end_ts, interval_s).isoformat()}"
                if key not in members_of:
                    members_of[key] = dict(intervals[key])
                members = members_of[key]
                if journey.journey_id not in members:  # else a replay: send the current figures again
                    members[journey.journey_id] = [journey.travel_s, journey.speed_kmh]
                    grown[key] = event
            for key, members in members_of.items():
                if key in grown:
                    with in_partition_of(grown[key]):
                        intervals[key] = members
                segment_id, start = key.split("|")
                stats = summarise([tuple(v) for v in members.values()], settings.outlier_mad_k)
                event = segment_stats(segment_id, datetime.fromisoformat(start), interval_s, stats)
                stats_topic.send_soon(key=segment_id.encode(), value=encode(event))
                MESSAGES_OUT.labels(STAGE, topics.SEGMENT_STATS).inc()
