"""Segment statistics: journeys, keyed by segment and interval, summarised per event-time interval.

A consumer group on ``journeys`` (keyed by segment and interval, so an interval lives on one worker)
taking whole batches, like the per-plate job, since there is a journey for most reads. Each
interval's member journeys are kept in a changelog (:mod:`stream_jobs.runtime.state`), one entry per
journey (key ``segment|interval start|journey_id``), written when the journey joins and again only
when its outlier flag changes: an entry per interval would be rewritten, all members included, by
every batch that touches it.

Outliers are decided here, per segment and interval (``outlier_mad_k`` median absolute
deviations from the interval's median), since only here are a journey's peers known. The per-plate
job sends a journey unflagged; when the interval's journeys make it an outlier (or no longer one),
this job sends it again on ``journeys``, same ``journey_id``, with ``outlier`` set as it now
stands, keyed like the original, so the latest message of a journey carries its flag
and the warehouse, which keeps the last row per journey, shows it. An interval's statistics are re-sent
whenever journeys join it (once per batch), with the same ``stats_id``, so a dashboard always
shows the current figures and the warehouse keeps the latest row. A journey replayed after a
crash is recognised by its id, changes nothing and re-sends the interval's current figures (the
crash may have lost them).

Intervals are forgotten ``KEEP_INTERVALS_S`` after the latest journey a partition has seen: far
longer than any journey can be late (see ``allowed_lateness_s``), so no interval is restarted
with part of its journeys. A journey ending more than ``event_time.max_future_s`` after its
record's receipt (none the per-plate job sends: its reads were admitted) is a dead letter, so that
no message can make this job forget every interval, or run past the end of the calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic

from gantry import topics
from gantry.config import EventTimeConfig, GantryConfig, StreamJobsConfig
from gantry.events import DeadLetter, Journey, dead_letter, encode
from gantry.kafka import new_topic
from gantry.observability import MESSAGES_OUT
from stream_jobs.intake import STAGE, parse_or_report, receipt
from stream_jobs.journeys.rules import interval_key, interval_of, outlier_flags, segment_stats, summarise
from stream_jobs.runtime.consumer import paced
from stream_jobs.runtime.state import StatefulBatchConsumer

KEEP_INTERVALS_S = 2 * 86_400
OWN_HEADERS = [("gantry-origin", b"segment-stats")]  # marks this job's re-sends, which it skips
OWN_HEADER = OWN_HEADERS[0]


def internal_topics(config: GantryConfig) -> list[NewTopic]:
    """The changelog, partitioned exactly like ``journeys``."""
    return [new_topic(config, topics.SEGMENT_JOURNEYS, config.broker.partitions_for(topics.JOURNEYS), compacted=True)]


@dataclass(slots=True)
class Member:
    """A journey of an interval, as this job last said it. A withdrawn journey stays a member,
    marked, so that this job knows what it last said of it."""

    travel_s: float
    speed_kmh: float
    outlier: bool  # the flag last sent
    journey: str  # its JSON, to send it again with another flag
    withdrawn: bool = False

    def to_json(self) -> list:
        return [self.travel_s, self.speed_kmh, self.outlier, self.journey, int(self.withdrawn)]

    @classmethod
    def from_json(cls, item: list) -> Member:
        return cls(float(item[0]), float(item[1]), bool(item[2]), str(item[3]), bool(item[4]) if len(item) > 4 else False)

    def sent_again(self, **update: bool) -> Journey:
        return Journey.model_validate_json(self.journey).model_copy(update=update)


@dataclass
class Intervals:
    """A partition's intervals: key ``segment|start`` (the journeys' message key) -> its members
    by journey_id, and the members (interval key, journey_id) changed or forgotten since the last
    save."""

    members: dict[str, dict[str, Member]] = field(default_factory=dict)
    changed: set[tuple[str, str]] = field(default_factory=set)
    forgotten: set[tuple[str, str]] = field(default_factory=set)


class SegmentStatsJob(StatefulBatchConsumer[Intervals]):
    group_id = "gantry-jobs-segment-stats"
    sources = (topics.JOURNEYS,)
    changelog = topics.SEGMENT_JOURNEYS
    fetch_max_wait_ms = 250  # journeys, charges and statistics may wait a quarter second
    max_records = 20_000
    # Each batch works out the outlier flags and figures of every interval it touches, all members
    # included: at most one batch a second keeps that work from growing with the read rate.
    batch_every_s = 1.0

    def __init__(self, bootstrap_servers: str, settings: StreamJobsConfig, window: EventTimeConfig, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.window = window
        self.interval_s = settings.stats_interval_s
        self.outlier_mad_k = settings.outlier_mad_k
        self.sent_stats = MESSAGES_OUT.labels(STAGE, topics.SEGMENT_STATS)
        self.sent_journeys = MESSAGES_OUT.labels(STAGE, topics.JOURNEYS)

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        touched: dict[str, Intervals] = {}
        arrived: dict[str, dict[str, bool | None]] = {}  # per interval: this batch's journeys, flag as they came
        withdrawn: list[tuple[str, Member]] = []  # (interval, member) withdrawn by this batch
        opened: dict[int, Intervals] = {}  # states that opened an interval: time to forget old ones
        now = datetime.now(UTC)
        async for record in paced(records):
            if OWN_HEADER in record.headers:
                continue  # this job's own re-sends: already counted
            journey = self._journey_of(record, now)
            if isinstance(journey, DeadLetter):
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(journey))
                continue
            state = await self.state_of(record.partition)
            key = interval_key(journey.segment_id, int(journey.end_ts.timestamp() * 1000), self.interval_s)
            if key not in state.members:
                state.members[key] = {}
                opened[id(state)] = state
            member = state.members[key].get(journey.journey_id)
            touched[key] = state
            arrivals = arrived.setdefault(key, {})
            if journey.withdrawn:
                if member is not None and not member.withdrawn:
                    member.withdrawn = True
                    state.changed.add((key, journey.journey_id))
                    withdrawn.append((key, member))
            elif member is None or member.withdrawn:
                state.members[key][journey.journey_id] = Member(journey.travel_s, journey.speed_kmh, journey.outlier,
                                                                record.value.decode())
                state.changed.add((key, journey.journey_id))
                # restored after a withdrawal: re-sent whatever its flag, to follow this job's withdrawal
                arrivals[journey.journey_id] = None if member is not None else journey.outlier
            else:  # a replay: its flag is checked, and the interval's current figures go out again
                arrivals[journey.journey_id] = journey.outlier
        for key, member in withdrawn:
            # Sent again by this job, so that it follows any outlier flag this job sent before.
            await self._resend(key, member.sent_again(outlier=member.outlier, withdrawn=True))
        for key, state in touched.items():
            segment_id, start = interval_of(key)
            for journey in _reflagged(state, key, arrived[key], self.outlier_mad_k):
                await self._resend(key, journey)
            active = [(m.travel_s, m.speed_kmh) for m in state.members[key].values() if not m.withdrawn]
            event = segment_stats(segment_id, start, self.interval_s, summarise(active, self.outlier_mad_k))
            await self.outbox.put(topics.SEGMENT_STATS, key=segment_id.encode(), value=encode(event))
            self.sent_stats.inc()
        for state in opened.values():
            _forget_old(state)
        await self.save()

    def _journey_of(self, record: ConsumerRecord, now: datetime) -> Journey | DeadLetter:
        journey = parse_or_report(Journey, record.value, STAGE, topics.JOURNEYS)
        if isinstance(journey, DeadLetter):
            return journey
        received_at = receipt(record.timestamp, now, self.window)
        if refused := self.window.refusal(journey.end_ts, received_at, past=False, name="end_ts"):
            return dead_letter(record.value, refused, stage=STAGE, source_topic=topics.JOURNEYS,
                               partition=record.partition, offset=record.offset)
        return journey

    async def _resend(self, key: str, journey: Journey) -> None:
        """A journey again, keyed like the original so that it follows it."""
        assert self.outbox is not None
        await self.outbox.put(topics.JOURNEYS, key=key.encode(), value=encode(journey), headers=OWN_HEADERS)
        self.sent_journeys.inc()

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> Intervals:
        state = Intervals()
        for entry, value in entries.items():
            key, journey_id = entry.decode().rsplit("|", 1)
            state.members.setdefault(key, {})[journey_id] = Member.from_json(orjson.loads(value))
        return state

    def changes(self, state: Intervals) -> dict[bytes, bytes | None]:
        entries: dict[bytes, bytes | None] = {
            f"{key}|{journey_id}".encode(): orjson.dumps(state.members[key][journey_id].to_json())
            for key, journey_id in state.changed
        }
        entries.update({f"{key}|{journey_id}".encode(): None for key, journey_id in state.forgotten})
        state.changed.clear()
        state.forgotten.clear()
        return entries


def _reflagged(state: Intervals, key: str, arrived: dict[str, bool | None], k: float) -> list[Journey]:
    """The journeys of an interval whose outlier flag the topic does not show as it now stands:
    those the new members moved across the threshold, and those that just arrived (new, or sent
    again after a crash) with another flag (None: whatever their flag). Each goes out again with
    its current flag. Withdrawn journeys take no part."""
    members = {journey_id: m for journey_id, m in state.members[key].items() if not m.withdrawn}
    flags = dict(zip(members, outlier_flags([m.travel_s for m in members.values()], k), strict=True))
    stale = []
    for journey_id, member in members.items():
        if member.outlier != flags[journey_id] or arrived.get(journey_id, flags[journey_id]) != flags[journey_id]:
            member.outlier = flags[journey_id]
            state.changed.add((key, journey_id))
            stale.append(member.sent_again(outlier=member.outlier))
    return stale


def _forget_old(state: Intervals) -> None:
    starts = {key: interval_of(key)[1].timestamp() for key in state.members}
    if not starts:
        return
    horizon = max(starts.values()) - KEEP_INTERVALS_S
    for key, start in starts.items():
        if start < horizon:
            for journey_id in state.members.pop(key):
                state.changed.discard((key, journey_id))
                state.forgotten.add((key, journey_id))
