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
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
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


def ensure_topics(config: GantryConfig, bootstrap_servers: str) -> list[str]:
    """Create the pipeline's topics with the configured partition counts; returns those created."""
    return create_missing(bootstrap_servers, [
        NewTopic(
            name,
            config.broker.partitions_for(name),
            1,
            topic_configs={"cleanup.policy": "compact"} if name in topics.COMPACTED else {},
        )
        for name in topics.ALL
    ])


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
