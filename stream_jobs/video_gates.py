"""Decisions for the gate reads recognised from video, which no request waits for.

A gate camera whose pictures come as video (a stream or file through ``gantry ingest``, frames,
the recogniser) sends no request to the edge endpoint: its reads reach ``plate_reads`` only.
This job decides them by the same rules as the endpoint (:func:`sites.access.decide`), from the
same kind of copy of the lists and of who is inside (:class:`sites.gatekeeper.Gatekeeper` kept
by :class:`sites.feed.SiteFeed`), and sends each decision to ``gate_decisions`` keyed by plate,
where the parking job pairs it into stays and the warehouse records it.

A read is decided once. The recogniser's reads carry the ``frame_id`` of the frame they were
read on and the endpoint's never do, so a read with no ``frame_id`` was decided in its request
and is left alone here. Such a decision opens nothing: a barrier is driven only by the edge
endpoint's answer. It records what the rules say of a car the camera saw, and an ``allow`` is a
passage for the parking job.

``plate_reads`` is keyed by plate, so one worker decides all of a plate's reads and notes each
decision in its presence at once (an exit read seconds after the entry finds the stay); what the
other workers and the endpoints decided comes through ``parking_sessions``. The decision's id is
the read's (:func:`sites.access.decision_id`), so a read handled again after a crash is still
one decision in the warehouse and one passage. Reads that do not parse, of unknown cameras or
timed outside ``event_time`` are skipped (the screener dead-letters them), and so are the reads
of an erased plate timed before its erasure.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from gantry import topics
from gantry.config import GantryConfig
from gantry.events import DeadLetter, encode
from gantry.observability import MESSAGES_OUT
from sites.feed import SiteFeed
from sites.gatekeeper import Gatekeeper
from stream_jobs.intake import STAGE, admit, receipt
from stream_jobs.runtime.compacted import ErasureFeed
from stream_jobs.runtime.consumer import BatchConsumer, paced


class VideoGateJob(BatchConsumer):
    group_id = "gantry-jobs-video-gates"
    sources = (topics.PLATE_READS,)
    fetch_max_wait_ms = 100

    def __init__(self, bootstrap_servers: str, config: GantryConfig, erasures: ErasureFeed, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.gatekeeper = Gatekeeper(config.sites)
        self.feed = SiteFeed(bootstrap_servers, self.gatekeeper, None)
        self.erasures = erasures
        self.known_cameras = frozenset(c.id for c in config.cameras)
        self.window = config.event_time
        self.sent = MESSAGES_OUT.labels(STAGE, topics.GATE_DECISIONS)

    async def before_consuming(self) -> None:
        await self.feed.start(wait_s=None)  # no read is decided against half-loaded lists
        await self.erasures.loaded.wait()

    async def handle(self, records: list[ConsumerRecord]) -> None:
        assert self.outbox is not None
        now = datetime.now(UTC)
        async for record in paced(records):
            read = admit(record.value, self.known_cameras, self.window, receipt(record.timestamp, now, self.window))
            if isinstance(read, DeadLetter) or read.frame_id is None or read.camera_id not in self.gatekeeper.gates:
                continue
            if self.erasures.blocklist.erased_at(read.plate, read.ts) is not None:
                continue
            decision = self.gatekeeper.decide(read)
            if decision is not None:
                await self.outbox.put(topics.GATE_DECISIONS, key=read.plate.encode(), value=encode(decision))
                self.sent.inc()

    async def on_stop(self) -> None:
        await self.feed.stop()
        await super().on_stop()
