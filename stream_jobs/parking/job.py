"""The parking job: gate decisions in, parking sessions out, per car park and plate.

A consumer group on ``gate_decisions`` (keyed by plate, so a plate's passages share a partition),
on the batch runtime of :mod:`stream_jobs.runtime.consumer` with its state in a changelog
(:mod:`stream_jobs.runtime.state`): one entry per car park and plate, written once per batch. A
decision is a passage when the barrier opened: an entry or an exit allowed. A car refused, or
told to pay, is still on its side of the barrier; it passes when the exit opens once paid. Each
passage pairs the plate's stays again (:mod:`sites.pairing`) and the stays that changed go to
``parking_sessions``, keyed ``car_park:plate``. A decision delivered twice changes nothing; one
read again after a crash (its offset was handled before) sends the plate's stays again, in case
they were lost with the crash.

Event time: a partition's watermark is the latest decision it has seen; a passage older than
the watermark less ``allowed_lateness_s`` is late, and dropped with a count, since the stays it
could change have been forgotten. After each batch, open stays that passed ``max_stay_hours``
are sent again flagged as overstays, and ``gantry_parking_occupancy`` gives the open stays per
car park in the partitions this worker holds (summed over workers, the car park's occupancy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import ConsumerRecord
from kafka.admin import NewTopic
from prometheus_client import Counter, Gauge

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, encode
from gantry.kafka import new_topic
from gantry.observability import MESSAGES_OUT
from gantry.site_events import GateDecision
from gantry.sites import CarPark
from sites.pairing import Passage
from stream_jobs.intake import STAGE, parse_or_report
from stream_jobs.parking.stays import PlateStays, update
from stream_jobs.runtime.consumer import paced
from stream_jobs.runtime.state import StatefulBatchConsumer

WATERMARK_KEY = b"#watermark"  # cannot be a car park and plate: those hold a colon
OFFSET_KEY = b"#offset"  # the next gate_decisions offset of the partition still to handle
OCCUPANCY = Gauge("gantry_parking_occupancy", "Open stays per car park, in this worker's partitions",
                  ["car_park", "partition"])
LATE_PASSAGES = Counter("gantry_parking_late_passages", "Gate passages older than the allowed lateness, dropped")


def internal_topics(config: GantryConfig) -> list[NewTopic]:
    return [new_topic(config, topics.PARKING_STAYS, config.broker.partitions_for(topics.GATE_DECISIONS), compacted=True)]


def car_parks(config: GantryConfig) -> dict[str, tuple[CarPark, frozenset[str]]]:
    """Each car park with its site's free-parking lists."""
    return {park.id: (park, site.free_lists()) for site in config.sites for park in site.car_parks}


@dataclass
class ParkingState:
    partition: int
    watermark: datetime = datetime(1970, 1, 1, tzinfo=UTC)  # the latest passage seen
    offset: int = 0
    plates: dict[str, PlateStays] = field(default_factory=dict)  # by "car_park:plate"
    changed: set[str] = field(default_factory=set)
    moved: bool = False  # the offset or watermark moved since the last save


class ParkingJob(StatefulBatchConsumer[ParkingState]):
    group_id = "gantry-jobs-parking"
    sources = (topics.GATE_DECISIONS,)
    changelog = topics.PARKING_STAYS
    fetch_max_wait_ms = 100

    def __init__(self, bootstrap_servers: str, config: GantryConfig, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.parks = car_parks(config)
        self.lateness = timedelta(seconds=config.stream_jobs.allowed_lateness_s)
        self.dedup_s = config.stream_jobs.dedup_window_s
        self.sent = MESSAGES_OUT.labels(STAGE, topics.PARKING_SESSIONS)

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        touched: set[tuple[int, str]] = set()
        replayed: set[tuple[int, str]] = set()
        async for record in paced(records):
            decision = parse_or_report(GateDecision, record.value, STAGE, topics.GATE_DECISIONS)
            if isinstance(decision, DeadLetter):
                await self.outbox.put(topics.DEAD_LETTERS, value=encode(decision))
                continue
            state = await self.state_of(record.partition)
            handled_before = record.offset < state.offset
            state.offset, state.moved = max(state.offset, record.offset + 1), True
            passage = passage_of(decision)
            if passage is None or decision.car_park_id not in self.parks:
                continue
            if passage.ts < state.watermark - self.lateness:
                LATE_PASSAGES.inc()
                continue
            key = f"{decision.car_park_id}:{decision.plate}"
            stays = state.plates.setdefault(key, PlateStays())
            if any(p.read_id == passage.read_id for p in stays.passages):
                if handled_before:  # read again after a crash: what it produced may not have been sent
                    replayed.add((record.partition, key))
                continue  # else a device that sent its read twice: nothing changes
            stays.passages.append(passage)
            state.watermark = max(state.watermark, passage.ts)
            touched.add((record.partition, key))
        for partition, state in self.states.items():
            touched |= {(partition, key) for key, stays in state.plates.items() if self._overstaying(key, stays, state)}
        for partition, key in sorted(touched):
            await self._pair(self.states[partition], key)
        for partition, key in sorted(replayed - touched):
            for session in sorted(self.states[partition].plates[key].sent.values(), key=lambda s: s.first_ts):
                await self.outbox.put(topics.PARKING_SESSIONS, key=key.encode(), value=encode(session))
        for state in self.states.values():
            self._count(state)
        await self.save()

    def _overstaying(self, key: str, stays: PlateStays, state: ParkingState) -> bool:
        """An open stay past the car park's longest stay, not yet sent flagged."""
        since = stays.open_since()
        found = self.parks.get(key.split(":", 1)[0])
        if since is None or found is None:
            return False
        flagged = any(s.overstay and s.entry_ts == since and not s.withdrawn for s in stays.sent.values())
        return not flagged and state.watermark - since > timedelta(hours=found[0].max_stay_hours)

    async def _pair(self, state: ParkingState, key: str) -> None:
        assert self.outbox is not None
        park_id, plate = key.split(":", 1)
        park, free_lists = self.parks[park_id]
        stays = state.plates[key]
        for session in update(stays, plate, park, free_lists, now=state.watermark, dedup_s=self.dedup_s,
                              horizon=state.watermark - self.lateness):
            await self.outbox.put(topics.PARKING_SESSIONS, key=key.encode(), value=encode(session))
            self.sent.inc()
        state.changed.add(key)

    def _count(self, state: ParkingState) -> None:
        counts = dict.fromkeys(self.parks, 0)
        for key, stays in state.plates.items():
            park_id = key.split(":", 1)[0]
            if park_id in counts and stays.open_since() is not None:
                counts[park_id] += 1
        for park_id, count in counts.items():
            OCCUPANCY.labels(park_id, str(state.partition)).set(count)

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> ParkingState:
        state = ParkingState(partition)
        if WATERMARK_KEY in entries:
            state.watermark = datetime.fromisoformat(entries[WATERMARK_KEY].decode())
        state.offset = int(entries.get(OFFSET_KEY, 0))
        state.plates = {k.decode(): PlateStays.from_json(orjson.loads(v))
                        for k, v in entries.items() if k not in (WATERMARK_KEY, OFFSET_KEY)}
        return state

    def changes(self, state: ParkingState) -> dict[bytes, bytes | None]:
        if not state.changed and not state.moved:
            return {}
        # The offset first: a state saved in part must not pass its decisions for new ones.
        entries: dict[bytes, bytes | None] = {OFFSET_KEY: str(state.offset).encode()}
        for key in state.changed:
            stays = state.plates.get(key)
            if stays is not None and not stays.passages:
                del state.plates[key]
                stays = None
            entries[key.encode()] = orjson.dumps(stays.to_json()) if stays is not None else None
        entries[WATERMARK_KEY] = state.watermark.isoformat().encode()
        state.changed.clear()
        state.moved = False
        return entries


def passage_of(decision: GateDecision) -> Passage | None:
    """The passage a decision records, or None where the barrier stayed shut."""
    if decision.decision != "allow" or decision.car_park_id is None:
        return None
    return Passage(decision.ts, decision.read_id, decision.direction, decision.list, decision.paid_at)
