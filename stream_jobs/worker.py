"""Running one stream-jobs worker process with Gantry's health endpoint next to it."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from typing import NoReturn

from mode import Worker

from gantry.config import GantryConfig
from gantry.kafka import create_missing, ensure_topics
from gantry.observability import serve_health
from gantry.runtime import endpoints
from stream_jobs.app import Jobs, internal_topics, ready

log = logging.getLogger(__name__)
RESTARTS_ENV = "GANTRY_JOBS_RESTARTS"  # crashes in a row, carried across the re-executions
STEADY_S = 120.0  # a worker that ran this long before crashing starts its backoff afresh
# A worker allocates a handful of objects per read, nearly all freed at once by reference
# counting; at Python's default (a young collection every 700 allocations, an older one every
# 10 of those) the collector walked them so often that it took about a tenth of the worker's
# CPU (docs/benchmarks.md). Less often still finds every cycle, with a fraction of the walks.
COLLECT_EVERY = (20_000, 50, 100)


def run_worker(config: GantryConfig, worker_index: int, health_port: int) -> None:
    """Block until the worker is stopped (SIGTERM/SIGINT); raises GantryError on bad setup."""
    for chatty in ("aiokafka", "mode", "kafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    bootstrap = endpoints(config).bootstrap_servers
    ensure_topics(config, bootstrap)
    create_missing(bootstrap, internal_topics(config))
    jobs = Jobs(config, bootstrap)
    gc.set_threshold(*COLLECT_EVERY)
    server = serve_health(health_port, ready=lambda: ready(jobs))
    log.info("stream jobs worker %d: health on port %d", worker_index, server.server_port)
    started = time.monotonic()
    try:
        Worker(jobs, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
    except SystemExit as stopped:
        if stopped.code in (None, 0):  # stopped by SIGTERM/SIGINT
            raise
        start_again(worker_index, time.monotonic() - started)


def restart_delay(crashes_before: int, ran_s: float) -> tuple[int, float]:
    """(crashes in a row, seconds to wait) after a crash: doubling from 1 s to 30 s, and from
    1 s again once the worker had been running steadily."""
    crashes = 1 if ran_s >= STEADY_S else crashes_before + 1
    return crashes, min(2.0 ** (crashes - 1), 30.0)


def start_again(worker_index: int, ran_s: float) -> NoReturn:
    """A crashed worker (say, an output the broker refused while its storage was down) runs
    again as the same process: its state comes back from the changelogs as after any crash,
    without waiting for `gantry up` or a kubelet to notice, and its PID and ports stay the same."""
    crashes, wait_s = restart_delay(int(os.environ.get(RESTARTS_ENV, "0")), ran_s)
    log.error("stream jobs worker %d crashed (%d in a row); starting again in %.0f s", worker_index, crashes, wait_s)
    time.sleep(wait_s)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], os.environ | {RESTARTS_ENV: str(crashes)})
