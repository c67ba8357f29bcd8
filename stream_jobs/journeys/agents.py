"""Segment statistics: journeys, keyed by segment, summarised per event-time interval.

Each interval's statistics are re-sent whenever a journey joins it, with the same ``stats_id``,
so a dashboard always shows the current figures and the warehouse keeps the latest row; a
journey replayed after a crash is recognised by its id, changes nothing and re-sends the
interval's current figures (the crash may have lost them).
"""

from __future__ import annotations

from gantry import topics
from gantry.events import DeadLetter, Journey, encode
from gantry.observability import MESSAGES_OUT
from stream_jobs.intake import STAGE, parse_or_report
from stream_jobs.journeys.rules import interval_start, segment_stats, summarise


def register(jobs) -> None:
    app, settings = jobs.app, jobs.config.stream_jobs
    journeys = jobs.topic(topics.JOURNEYS)
    intervals = app.Table("segment_intervals", default=dict, partitions=jobs.config.broker.partitions_for(topics.JOURNEYS))
    stats_topic = jobs.topic(topics.SEGMENT_STATS)
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @app.agent(journeys, name="segment_stats")
    async def summarise_segments(stream) -> None:
        async for raw in stream:
            journey = parse_or_report(Journey, raw, STAGE, topics.JOURNEYS)
            if isinstance(journey, DeadLetter):
                await dead_letters.send(value=encode(journey))
                continue
            start = interval_start(journey.end_ts, settings.stats_interval_s)
            key = f"{journey.segment_id}|{start.isoformat()}"
            members = intervals[key]
            if journey.journey_id not in members:  # else a replay: send the current figures again
                members = members | {journey.journey_id: [journey.travel_s, journey.speed_kmh]}
                intervals[key] = members
            stats = summarise([tuple(v) for v in members.values()], settings.outlier_mad_k)
            event = segment_stats(journey.segment_id, start, settings.stats_interval_s, stats)
            await stats_topic.send(key=journey.segment_id.encode(), value=encode(event))
            MESSAGES_OUT.labels(STAGE, topics.SEGMENT_STATS).inc()
