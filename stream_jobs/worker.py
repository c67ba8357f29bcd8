"""Running one Faust worker process with Gantry's health endpoint next to it."""

from __future__ import annotations

import logging

import faust

from gantry.config import GantryConfig
from gantry.kafka import create_missing, ensure_topics
from gantry.observability import serve_health
from gantry.runtime import endpoints
from stream_jobs.app import create_app, ready
from stream_jobs import plate_job
from stream_jobs.journeys import stats_job

log = logging.getLogger(__name__)


def run_worker(config: GantryConfig, worker_index: int, health_port: int) -> None:
    """Block until the worker is stopped (SIGTERM/SIGINT); raises GantryError on bad setup."""
    for chatty in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    bootstrap = endpoints(config).bootstrap_servers
    ensure_topics(config, bootstrap)
    create_missing(bootstrap, [*plate_job.internal_topics(config), *stats_job.internal_topics(config)])
    jobs = create_app(config, bootstrap, worker_index=worker_index)
    server = serve_health(health_port, ready=lambda: ready(jobs))
    log.info("stream jobs worker %d: health on port %d", worker_index, server.server_port)
    faust.Worker(jobs.app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
