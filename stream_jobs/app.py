"""The Faust application that turns ``plate_reads`` into hits, journeys and charges.

Every worker runs the same app: the Faust agent (closing charging days) and the batch consumers
(screening, the per-plate job, segment statistics, webhooks) each form a consumer group, which
splits the partitions among the workers, so adding a worker adds capacity. The app is built by :func:`create_app` rather
than at import time because the broker address and the camera/segment/zone register come from
the Gantry configuration of the running command.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import faust

from gantry.config import GantryConfig
from gantry.erasures import BlockList
from stream_jobs import transport
from stream_jobs.charges import agents as charge_agents
from stream_jobs.charges.registers import CONCESSIONS, VEHICLES, ChargeRegisters
from stream_jobs.fastpath import BatchConsumer
from stream_jobs.feeds import ErasureFeed, RegisterFeed
from stream_jobs.hotlist.feed import HotlistFeed
from stream_jobs.hotlist.rules import HotlistIndex
from stream_jobs.hotlist.screening import Screener
from stream_jobs.journeys.stats_job import SegmentStatsJob
from stream_jobs.parking.job import ParkingJob
from stream_jobs.plate_job import PlateJob
from stream_jobs.webhooks import Notifier, routes

log = logging.getLogger(__name__)
APP_ID = "gantry-jobs"


@dataclass
class Jobs:
    """What the agents share: the app, its topics, the configuration and the hotlist feed."""

    app: faust.App
    config: GantryConfig
    feed: HotlistFeed
    known_cameras: frozenset[str]
    registers: list[RegisterFeed] = field(default_factory=list)  # vehicle classes, charge concessions
    fast: list[BatchConsumer] = field(default_factory=list)
    last_not_ready: str | None = "starting"
    topics: dict[str, faust.TopicT] = field(default_factory=dict)

    def topic(self, name: str) -> faust.TopicT:
        if name not in self.topics:
            self.topics[name] = self.app.topic(name, key_serializer="raw", value_serializer="raw")
        return self.topics[name]


def create_app(
    config: GantryConfig, bootstrap_servers: str, *, worker_index: int = 0, data_dir: Path | None = None
) -> Jobs:
    """Build the app: a Faust agent closing charging days (a message per zone, day and partition),
    and batch consumers (:mod:`stream_jobs.fastpath`) for the per-read volumes: screening, the
    per-plate job, segment statistics and webhooks."""
    state_dir = data_dir or config.data_dir / "stream_jobs" / f"worker-{worker_index}"
    state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        APP_ID,
        broker=f"{transport.SCHEME}://{bootstrap_servers}",
        store="memory://",
        datadir=str(state_dir),
        processing_guarantee="at_least_once",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=config.broker.partitions,
        topic_replication_factor=config.broker.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        stream_recovery_delay=0.1,
        # Standby copies buy nothing with in-memory tables (a worker rebuilds from the changelog
        # anyway) and Faust's standby consistency check trips on this broker's high-water marks.
        table_standby_replicas=0,
        stream_wait_empty=False,
        producer_linger=0.005,
        producer_max_batch_size=1_048_576,
    )
    feed = HotlistFeed(bootstrap_servers, HotlistIndex(), loop=app.loop, beacon=app.beacon)
    erasures = ErasureFeed(bootstrap_servers, BlockList(config.privacy.pseudonym_key), loop=app.loop, beacon=app.beacon)
    cameras = frozenset(c.id for c in config.cameras)
    charge_registers = ChargeRegisters()
    register_feeds = [
        RegisterFeed(bootstrap_servers, register.topic, register.model, index, loop=app.loop, beacon=app.beacon)
        for register, index in ((VEHICLES, charge_registers.vehicles), (CONCESSIONS, charge_registers.concessions))
    ]
    jobs = Jobs(app, config, feed, cameras, register_feeds)
    jobs.fast.append(Screener(bootstrap_servers, feed, erasures, cameras, config.event_time,
                              loop=app.loop, beacon=app.beacon))
    jobs.fast.append(PlateJob(bootstrap_servers, config, cameras, erasures, charge_registers, register_feeds,
                              loop=app.loop, beacon=app.beacon))
    jobs.fast.append(SegmentStatsJob(bootstrap_servers, config.stream_jobs, config.event_time,
                                     loop=app.loop, beacon=app.beacon))
    for index, route in enumerate(routes(config.hotlist)):
        jobs.fast.append(Notifier(bootstrap_servers, config.hotlist, route, report_malformed=index == 0,
                                  loop=app.loop, beacon=app.beacon))
    if any(site.car_parks for site in config.sites):
        jobs.fast.append(ParkingJob(bootstrap_servers, config, loop=app.loop, beacon=app.beacon))
    for service in (feed, erasures, *register_feeds, *jobs.fast):
        app.service(service)

    charge_agents.register(jobs)
    return jobs


def not_ready_because(jobs: Jobs) -> str | None:
    """Why the worker cannot screen yet: the hotlist is still loading or it holds no partitions."""
    if not jobs.feed.loaded.is_set():
        return "loading the hotlist"
    for register in jobs.registers:
        if not register.loaded.is_set():
            return f"loading {register.topic}"
    if jobs.app.rebalancing or not jobs.app.consumer.assignment():
        return f"waiting for partitions in group {APP_ID}"
    for service in jobs.fast:
        if not service.assigned():
            return f"waiting for partitions in group {service.group_id}"
    return None


def ready(jobs: Jobs) -> bool:
    reason = not_ready_because(jobs)
    if reason != jobs.last_not_ready:
        log.info("worker %s", f"not ready: {reason}" if reason else "ready")
        jobs.last_not_ready = reason
    return reason is None
