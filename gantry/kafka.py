"""Kafka clients with the settings every stage shares.

Consumers never auto-commit: a stage commits offsets only after its output is safely written
(produced and acknowledged, or inserted), which makes every stage at-least-once. Session and poll
timeouts are short so a group rebalances in seconds when a worker dies or joins.

"Acknowledged" is checked send by send (:func:`delivered`): kafka-python's ``flush()`` returns
without an error when a record failed (delivery timeout, broker errors after the retries). A
stage whose sends failed commits nothing and reads the batch again (:func:`rewind`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError
from kafka.producer.future import FutureRecordMetadata

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, encode

log = logging.getLogger(__name__)


def producer(bootstrap_servers: str, **settings) -> KafkaProducer:
    defaults = dict(acks="all", linger_ms=5, max_request_size=8 * 1024 * 1024, retries=10)
    return KafkaProducer(bootstrap_servers=bootstrap_servers, **(defaults | settings))


def consumer(bootstrap_servers: str, group_id: str, topic_names: Iterable[str], **settings) -> KafkaConsumer:
    defaults = dict(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=10_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    return KafkaConsumer(*topic_names, bootstrap_servers=bootstrap_servers, **(defaults | settings))


def new_topic(config: GantryConfig, name: str, partitions: int | None = None, *, compacted: bool = False) -> NewTopic:
    """A topic as this deployment wants it: its partitions and the configured replication factor;
    compacted, or kept for :data:`topics.RETENTION_MS` where that names it."""
    return NewTopic(
        name,
        partitions or config.broker.partitions_for(name),
        config.broker.replication_factor,
        topic_configs=topic_configs(name, compacted=compacted),
    )


def topic_configs(name: str, *, compacted: bool = False) -> dict[str, str]:
    if compacted:
        return {"cleanup.policy": "compact"}
    if name in topics.RETENTION_MS:
        return {"retention.ms": str(topics.RETENTION_MS[name])}
    return {}


def ensure_topics(config: GantryConfig, bootstrap_servers: str) -> list[str]:
    """Create the pipeline's topics with the configured partition counts; returns those created."""
    return create_missing(
        bootstrap_servers, [new_topic(config, name, compacted=name in topics.COMPACTED) for name in topics.ALL]
    )


def create_missing(bootstrap_servers: str, wanted: list[NewTopic]) -> list[str]:
    """Create those of ``wanted`` that do not exist yet; returns their names."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("topics were created concurrently")
        return [t.name for t in missing]
    finally:
        admin.close()


def send_dead_letter(producer_: KafkaProducer, letter: DeadLetter) -> FutureRecordMetadata:
    """Send a dead letter; the future tells whether the broker took it (see :func:`delivered`)."""
    log.warning("dead letter from %s[%s]@%s: %s", letter.source_topic, letter.partition, letter.offset, letter.reason)
    return producer_.send(topics.DEAD_LETTERS, value=encode(letter))


def delivered(producer_: KafkaProducer, sent: Iterable[FutureRecordMetadata], timeout_s: float = 60.0) -> bool:
    """Flush, then whether the broker acknowledged every one of ``sent``; the failures are logged."""
    try:
        producer_.flush(timeout=timeout_s)
    except KafkaTimeoutError:
        log.error("the broker did not answer every send within %.0f s", timeout_s)
    failed = [future for future in sent if not future.succeeded()]
    if failed:
        log.error("%d sends not acknowledged by the broker, the first: %s", len(failed),
                  failed[0].exception or "no answer yet")
    return not failed


def rewind(consumer_: KafkaConsumer) -> None:
    """Seek every assigned partition back to its committed offset (its start where nothing is
    committed, as ``auto_offset_reset`` does), so that everything read since is read again."""
    for partition in consumer_.assignment():
        committed = consumer_.committed(partition)
        if committed is None:
            consumer_.seek_to_beginning(partition)
        else:
            consumer_.seek(partition, committed)


def key_text(key: bytes | None) -> str:
    """A compacted topic's record key as text. A key that is not UTF-8 (a stranger's write) is
    no entry's key, and must not stop the reader that every worker needs loaded: its undecodable
    bytes become U+FFFD, so it matches no entry and is still shown recognisably in a warning."""
    return key.decode(errors="replace") if key else ""


def replay(bootstrap_servers: str, topic: str) -> Iterator[ConsumerRecord]:
    """Every record of ``topic`` from its beginning to its end as of now (a compacted topic's
    replay is its current table), with no consumer group."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        ends = reader.end_offsets(partitions)
        while any(reader.position(tp) < end for tp, end in ends.items()):
            for records in reader.poll(timeout_ms=500, max_records=10_000).values():
                yield from records
    finally:
        reader.close()


def live_keys(bootstrap_servers: str, topic: str) -> int:
    """How many keys of a compacted topic stand now: their latest record is not a tombstone."""
    latest = {record.key: record.value is not None for record in replay(bootstrap_servers, topic)}
    return sum(latest.values())
