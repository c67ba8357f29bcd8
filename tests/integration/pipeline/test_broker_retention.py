"""The embedded broker on disk drops record batches past their topic's retention.ms, and only
those: consumers go on from the earliest kept offset; compacted topics and topics without a
retention keep everything."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from gantry.broker import EmbeddedBroker
from gantry.kafka import producer

pytestmark = pytest.mark.integration
# Long enough that the batches written after the old ones expired stay while the test looks, on
# a loaded machine too (at 2 s they were sometimes swept before the check, under load).
RETENTION_MS = 5000


def earliest(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """(earliest offset, end offset, first offset a consumer from the beginning gets).

    The earliest offset is asked first: the sweep may remove a batch at any moment, and asked after
    the poll it could already be past the record the poll got (seen as (10, 13, 9))."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, 0)
        beginning = consumer.beginning_offsets([tp])[tp]
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        first = next(r.offset for records in [consumer.poll(timeout_ms=5000)] for r in records.get(tp, []))
        return beginning, consumer.end_offsets([tp])[tp], first
    finally:
        consumer.close()


def test_batches_past_retention_go_and_consumers_go_on_from_the_earliest_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTRY_RETENTION_SWEEP_S", "0.5")
    with EmbeddedBroker(data_dir=tmp_path / "broker") as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([
            NewTopic("short", 1, 1, topic_configs={"retention.ms": str(RETENTION_MS)}),
            NewTopic("compacted", 1, 1, topic_configs={"retention.ms": str(RETENTION_MS), "cleanup.policy": "compact"}),
            NewTopic("forever", 1, 1),
        ])
        admin.close()
        send = producer(broker.bootstrap_servers)
        for topic in ("short", "compacted", "forever"):
            for n in range(10):  # one batch each
                send.send(topic, key=b"k%d" % n, value=b"old %d" % n, partition=0)
                send.flush()
        time.sleep(RETENTION_MS / 1000 + 0.5)
        for n in range(3):
            send.send("short", value=b"new %d" % n, partition=0)
            send.flush()
        send.close()
        deadline = time.monotonic() + 30
        while (short := earliest(broker.bootstrap_servers, "short"))[0] < 10:
            assert time.monotonic() < deadline, f"old batches of 'short' still there: {short}"
            time.sleep(0.5)
        assert short == (10, 13, 10)
        assert earliest(broker.bootstrap_servers, "compacted") == (0, 10, 0)
        assert earliest(broker.bootstrap_servers, "forever") == (0, 10, 0)
        batches = sorted(p.name for p in (tmp_path / "broker").rglob("short/partitions/*/records/*.batch"))
        assert [int(name.split(".")[0]) for name in batches] == [10, 11, 12]
