"""Events delivered through several producer connections land where one producer would put them.

The jobs keep a plate's state per partition, so an event sent through any of the endpoint's
producers must reach the partition Kafka's default partitioner gives its key (the partition
every other producer of the pipeline picks), and one key's events must keep their order, both
straight from a request and replayed from the spool. The partitions are checked against
kafka-python's own partitioner, not the one the endpoint uses.
"""

from __future__ import annotations

import asyncio

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.partitioner import murmur2

from ingest.delivery import Delivery
from ingest.spool import Spool

TOPIC, PARTITIONS, KEYS, PER_KEY = "lanes-check", 4, 24, 10


def test_each_key_reaches_its_default_partition_in_order_straight_and_replayed(broker, topic_records, tmp_path) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    admin.close()
    keys = [f"PLATE{n:02d}".encode() for n in range(KEYS)]
    spool = Spool(tmp_path / "ingest-spool", max_bytes=64 * 1024 * 1024, max_events=10_000)
    for key in keys:  # left by an earlier run: replayed first, through the same producers
        for n in range(PER_KEY // 2):
            spool.append(TOPIC, key, f"{n}".encode())

    async def deliver_the_rest() -> list[str]:
        delivery = Delivery(broker.bootstrap_servers, spool, ack_timeout_s=5, producers=3)
        await delivery.start()
        try:
            while not delivery.healthy:
                await asyncio.sleep(0.05)
            return await asyncio.gather(*(
                delivery.deliver(TOPIC, key, f"{n}".encode()) for n in range(PER_KEY // 2, PER_KEY) for key in keys
            ))
        finally:
            await delivery.stop()

    assert set(asyncio.run(deliver_the_rest())) == {"acked"}
    records = topic_records(broker.bootstrap_servers, TOPIC, None, KEYS * PER_KEY)
    assert len(records) == KEYS * PER_KEY
    for key in keys:
        own = [r for r in records if r.key == key]
        assert {r.partition for r in own} == {(murmur2(key) & 0x7FFFFFFF) % PARTITIONS}
        assert [int(r.value) for r in sorted(own, key=lambda r: r.offset)] == list(range(PER_KEY))
    assert len({r.partition for r in records}) == PARTITIONS  # the keys spread over every partition
