"""A stream-jobs worker: the jobs that turn ``plate_reads`` into hits, journeys, charges and days.

Every worker runs the same jobs, each a consumer group on the batch runtime
(:mod:`stream_jobs.runtime.consumer`, state in :mod:`stream_jobs.runtime.state`): screening, the per-plate
job, segment statistics, day closing, webhooks and, where a site has car parks, parking, and
where it has gates, the decisions of gate reads from video. A group
splits its partitions among the workers, so adding a worker adds capacity. Next to them, each
worker keeps a whole copy of the compacted registers (:mod:`stream_jobs.runtime.compacted`). The jobs are
built by :class:`Jobs` rather than at import time because the broker address and the
camera/segment/zone register come from the Gantry configuration of the running command.
"""

from __future__ import annotations

import logging

from kafka.admin import NewTopic
from mode import Service

from gantry.config import GantryConfig
from gantry.erasures import BlockList
from stream_jobs import plate_job
from stream_jobs.charges import closing
from stream_jobs.charges.registers import CONCESSIONS, VEHICLES, ChargeRegisters
from stream_jobs.hotlist.feed import HotlistFeed
from stream_jobs.hotlist.rules import HotlistIndex
from stream_jobs.hotlist.screening import Screener
from stream_jobs.journeys import stats_job
from stream_jobs.parking import job as parking_job
from stream_jobs.runtime.compacted import ErasureFeed, RegisterFeed
from stream_jobs.runtime.consumer import BatchConsumer
from stream_jobs.video_gates import VideoGateJob
from stream_jobs.webhooks import Notifier, routes

log = logging.getLogger(__name__)


def internal_topics(config: GantryConfig) -> list[NewTopic]:
    """The jobs' own topics (:data:`gantry.topics.INTERNAL`), each partitioned as its job needs."""
    return [*plate_job.internal_topics(config), *stats_job.internal_topics(config),
            *closing.internal_topics(config), *parking_job.internal_topics(config)]


class Jobs(Service):
    """One worker's feeds and jobs, started and stopped together (a crash in one stops the worker)."""

    def __init__(self, config: GantryConfig, bootstrap_servers: str) -> None:
        super().__init__()
        shared = {"loop": self.loop, "beacon": self.beacon}
        self.feed = HotlistFeed(bootstrap_servers, HotlistIndex(), **shared)
        erasures = ErasureFeed(bootstrap_servers, BlockList(config.privacy.pseudonym_key), **shared)
        cameras = frozenset(c.id for c in config.cameras)
        charge_registers = ChargeRegisters()
        self.registers = [  # vehicle classes, charge concessions
            RegisterFeed(bootstrap_servers, register.topic, register.model, index, **shared)
            for register, index in ((VEHICLES, charge_registers.vehicles), (CONCESSIONS, charge_registers.concessions))
        ]
        self.feeds = [self.feed, erasures, *self.registers]
        self.consumers: list[BatchConsumer] = [
            Screener(bootstrap_servers, self.feed, erasures, cameras, config.event_time, **shared),
            plate_job.PlateJob(bootstrap_servers, config, cameras, erasures, charge_registers, self.registers, **shared),
            stats_job.SegmentStatsJob(bootstrap_servers, config.stream_jobs, config.event_time, **shared),
            closing.DayCloser(bootstrap_servers, config, **shared),
        ]
        for index, route in enumerate(routes(config.hotlist)):
            self.consumers.append(Notifier(bootstrap_servers, config.hotlist, route, report_malformed=index == 0,
                                           **shared))
        if any(site.car_parks for site in config.sites):
            self.consumers.append(parking_job.ParkingJob(bootstrap_servers, config, **shared))
        if any(site.gates for site in config.sites):  # gate reads recognised from video
            self.consumers.append(VideoGateJob(bootstrap_servers, config, erasures, **shared))
        self.last_not_ready: str | None = "starting"

    def on_init_dependencies(self) -> list[Service]:
        return [*self.feeds, *self.consumers]


def not_ready_because(jobs: Jobs) -> str | None:
    """Why the worker cannot screen yet: the hotlist is still loading or it holds no partitions."""
    if not jobs.feed.loaded.is_set():
        return "loading the hotlist"
    for register in jobs.registers:
        if not register.loaded.is_set():
            return f"loading {register.topic}"
    for service in jobs.consumers:
        if not service.assigned():
            return f"waiting for partitions in group {service.group_id}"
    return None


def ready(jobs: Jobs) -> bool:
    reason = not_ready_because(jobs)
    if reason != jobs.last_not_ready:
        log.info("worker %s", f"not ready: {reason}" if reason else "ready")
        jobs.last_not_ready = reason
    return reason is None
