"""Faust's Kafka transport with a short fetch wait, so a hit leaves within milliseconds.

faust-streaming builds its consumer with ``fetch_max_wait_ms=1500`` and offers no setting for it;
a broker that waits the full time when a partition is quiet (Tansu does) then adds up to 1.5 s to
every hit on a lightly loaded system, more than the one-second promise to hotlist subscribers.
This transport changes only that value. Select it with the ``gantry-kafka://`` broker scheme.
"""

from __future__ import annotations

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 20
SCHEME = "gantry-kafka"


class ResponsiveConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start() for its fetcher
        return consumer


class ResponsiveConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ResponsiveConsumerThread:
        return ResponsiveConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = ResponsiveConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
