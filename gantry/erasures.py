"""The erasure block-list: what keeps an erased plate's records still in Kafka out of the
warehouse and out of the stream jobs' state.

An erasure deletes the plate from the warehouse, but Kafka keeps records from before it for as
long as each topic's retention: reads on ``plate_reads`` and on the per-plate job's re-keyed
topic, hits, charges, journeys; and an ingest spool publishes what it held through an outage
later. A consumer that is behind, or replays from an older offset, would bring them back. So
``gantry privacy erase`` also writes the plate's pseudonym and the erasure time to the compacted
``erasures`` topic, and the sink and the per-plate job drop every record of that plate *timed
before the erasure*: a read's or hit's time, a charge's first read, a journey's start, a gate
decision's time, a parking stay's first passage, a payment's time.

Event time, not the record's offset or produce time: what was erased is what was recorded of the
plate until then, however late it reaches the pipeline (a camera's backlog import, a spool
flushed after an outage). A sighting after the erasure is new data and flows as usual: an
erasure is not a ban on the plate.

Keyed by the pseudonym (the keyed hash of :mod:`gantry.privacy`), never the plate: the
block-list must not become a list of the plates people asked to have forgotten. A record older
than the newest erasure costs a keyed hash to check; live traffic, newer than every erasure, is
waved through on one comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import orjson
from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from gantry import topics
from gantry.events import DeadLetter, Event, HotlistHit, Journey, PlateRead, ZoneCharge
from gantry.kafka import delivered, key_text, producer
from gantry.privacy import pseudonymise
from gantry.site_events import GateDecision, ParkingPayment, ParkingSession

log = logging.getLogger(__name__)


DEFAULT_RETENTION = timedelta(days=7)  # Kafka's log.retention.hours default
HELD_IN_CLEAR = (topics.PLATE_READS, topics.READS_BY_PLATE, topics.HOTLIST_HITS, topics.ZONE_CHARGES,
                 topics.LATE_READS, topics.DEAD_LETTERS, topics.WEBHOOK_DEAD_LETTERS, topics.GATE_DECISIONS)
"""The topics whose records carry plates in clear (``journeys`` carries pseudonyms)."""
TOMBSTONED = (topics.PLATE_HISTORIES, topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS)
"""The compacted topics keyed by the plate (``car_park:plate`` for the car parks') whose keys an
erasure tombstones."""


def entry(erased_at: datetime) -> bytes:
    """The value of a block-list record (its key is the plate's pseudonym)."""
    return orjson.dumps({"erased_at_ms": int(erased_at.timestamp() * 1000)})


def publish(bootstrap_servers: str, plate: str, pseudonym: str, erased_at: datetime,
            car_parks: Iterable[str] = ()) -> None:
    """Block-list the plate's past, tombstone its entry in the per-plate job's changelog (in
    every partition: a tombstone where the key never was costs nothing) and its stays and
    payments at each car park (keyed ``car_park:plate``, partitioned by key as they were sent).
    Raises :class:`ConnectionError` unless the broker took them all."""
    sender = producer(bootstrap_servers)
    try:
        sent = [sender.send(topics.ERASURES, key=pseudonym.encode(), value=entry(erased_at))]
        for partition in sorted(sender.partitions_for(topics.PLATE_HISTORIES)):
            sent.append(sender.send(topics.PLATE_HISTORIES, key=plate.encode(), value=None, partition=partition))
        for park in car_parks:
            for topic in (topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS):
                sent.append(sender.send(topic, key=f"{park}:{plate}".encode(), value=None))
        if not delivered(sender, sent):
            raise ConnectionError(f"the broker at {bootstrap_servers} did not take the erasure records")
    finally:
        sender.close()


@dataclass(frozen=True)
class Held:
    """What a topic may still hold of an erased plate, and until when (None: no end set)."""

    topic: str
    until: datetime | None
    note: str


def still_held(erased_at: datetime, *, embedded_broker: bool) -> list[Held]:
    """What Kafka may still hold of the plate from before ``erased_at``: each topic carrying it,
    kept as Gantry created it. The block-list keeps those records out of the warehouse and the
    jobs' state; anyone reading the topics directly still sees them until then.

    Both Kafka and the embedded broker (its object store, :mod:`gantry.retention`) drop batches
    past a topic's ``retention.ms``; a topic without one keeps Kafka's broker default (7 days),
    but everything on the embedded broker, which compacts nothing either.
    """
    held = []
    for topic in (*HELD_IN_CLEAR, topics.FRAMES, topics.JOURNEYS, *TOMBSTONED, topics.SEGMENT_JOURNEYS):
        if topic in topics.RETENTION_MS:
            kept_ms = topics.RETENTION_MS[topic]
            what = "pictures of the vehicle, not erased one by one; " if topic == topics.FRAMES else ""
            held.append(Held(topic, erased_at + timedelta(milliseconds=kept_ms),
                             f"{what}retention.ms={kept_ms}, as Gantry creates it"))
        elif topic in (*TOMBSTONED, topics.SEGMENT_JOURNEYS):
            what = "tombstoned" if topic in TOMBSTONED else "journeys (pseudonymised) dropped after two days"
            if embedded_broker:
                held.append(Held(topic, None, f"{what}; the embedded broker compacts nothing: older values stay"))
            else:
                held.append(Held(topic, None, f"{what}; older values stay until the log is compacted"))
        elif embedded_broker:
            held.append(Held(topic, None, "no retention.ms: the embedded broker keeps it until its storage is deleted"))
        else:
            held.append(Held(topic, erased_at + DEFAULT_RETENTION, "the broker's retention "
                             "(log.retention.hours, 7 days unless the cluster sets otherwise)"))
    return held


class BlockList:
    """Pseudonym -> erasure time, as the ``erasures`` topic says, and the test of a record against it.

    The key is asked for at the first erasure: a deployment without a pseudonymisation key runs
    as before until someone erases a plate (which needs the key); then a consumer without it
    stops, saying so, rather than let the erased plate's records through.
    """

    def __init__(self, key: Callable[[], SecretStr]) -> None:
        self._key = key
        self.erased: dict[str, datetime] = {}
        self.newest: datetime | None = None
        self._pseudonym: Callable[[str], str] | None = None

    def __len__(self) -> int:
        return len(self.erased)

    def apply(self, key: bytes | None, value: bytes | None) -> str | None:
        """Take one record of the topic; returns the pseudonym newly erased, if it is one."""
        if not key:
            return None
        pseudonym = key_text(key)
        if value is None:
            self.erased.pop(pseudonym, None)
            self.newest = max(self.erased.values(), default=None)
            return None
        try:
            at = datetime.fromtimestamp(int(orjson.loads(value)["erased_at_ms"]) / 1000, UTC)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            log.warning("ignoring a bad erasure record for %s: %s", pseudonym, exc)
            return None
        if self._pseudonym is None:  # here, not at the first record checked: a missing key stops the loading
            key = self._key()
            self._pseudonym = lru_cache(maxsize=65_536)(lambda p: pseudonymise(p, key))
        self.erased[pseudonym] = at
        self.newest = at if self.newest is None else max(self.newest, at)
        return pseudonym

    def pseudonym(self, plate: str) -> str:
        """The plate's pseudonym (only once there is an erasure: before, there is no key to ask)."""
        assert self._pseudonym is not None, "no erasure yet"
        return self._pseudonym(plate)

    def erased_at(self, plate: str, ts: datetime) -> datetime | None:
        """When ``plate`` was erased, if a record of it timed ``ts`` predates that erasure."""
        if self.newest is None or ts >= self.newest:
            return None
        return self.pseudonym_erased_at(self.pseudonym(plate), ts)

    def pseudonym_erased_at(self, pseudonym: str, ts: datetime) -> datetime | None:
        at = self.erased.get(pseudonym)
        return at if at is not None and ts < at else None

    def blocks(self, row: Event) -> bool:
        """Whether a warehouse row (an event of an output topic) holds an erased plate from before its erasure."""
        if self.newest is None:
            return False
        if isinstance(row, PlateRead):
            return self.erased_at(row.plate, row.ts) is not None
        if isinstance(row, HotlistHit):
            return any(self.erased_at(p, row.ts) is not None for p in {row.plate, row.listed_plate})
        if isinstance(row, ZoneCharge):
            return self.erased_at(row.plate, row.first_read_ts) is not None
        if isinstance(row, Journey):
            return self.pseudonym_erased_at(row.plate_pseudonym, row.start_ts) is not None
        if isinstance(row, GateDecision):
            return any(self.erased_at(p, row.ts) is not None for p in {row.plate, row.listed_plate} if p is not None)
        if isinstance(row, ParkingSession):
            return self.erased_at(row.plate, row.first_ts) is not None
        if isinstance(row, ParkingPayment):
            return self.erased_at(row.plate, row.paid_at) is not None
        if isinstance(row, DeadLetter):
            return self._letter_blocked(row)
        return False

    def _letter_blocked(self, letter: DeadLetter) -> bool:
        """A webhook failure carries the undelivered hit as its payload."""
        try:
            hit = HotlistHit.model_validate_json(letter.payload)
        except ValueError:
            return False
        return self.blocks(hit)


class Follower:
    """Keeps a :class:`BlockList` equal to the ``erasures`` topic, for a synchronous consumer
    (the sink): every partition, no consumer group, caught up on demand."""

    def __init__(self, bootstrap_servers: str, blocklist: BlockList) -> None:
        self.blocklist = blocklist
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
        self._partitions: list[TopicPartition] = []

    def catch_up(self) -> None:
        """Read every record written so far (one round trip when there is none new)."""
        if not self._partitions:  # the topic may be created after the sink started
            found = self._consumer.partitions_for_topic(topics.ERASURES) or ()
            if not found:
                return
            self._partitions = [TopicPartition(topics.ERASURES, p) for p in sorted(found)]
            self._consumer.assign(self._partitions)
            self._consumer.seek_to_beginning(*self._partitions)
        ends = self._consumer.end_offsets(self._partitions)
        while any(self._consumer.position(tp) < end for tp, end in ends.items()):
            for records in self._consumer.poll(timeout_ms=200, max_records=10_000).values():
                for record in records:
                    self.blocklist.apply(record.key, record.value)

    def close(self) -> None:
        self._consumer.close()
