"""``gantry bench jobs --json``: the paced load generator offers every read (none left behind in
its last record batch), the run waits for every expected output, and the last line is one JSON
object with the figures issue 18's targets are stated in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_paced_bench_offers_every_read_and_times_every_hit():
    run = subprocess.run(
        [sys.executable, "-m", "gantry", "bench", "jobs", "--reads", "1500", "--rate", "1000", "--workers", "1",
         "--storage", "memory", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["complete"] is True, figures["outputs"]
    hits = figures["outputs"]["hotlist_hits"].split("/")
    assert hits[0] == hits[1] and int(hits[1]) > 0
    assert 0 < figures["sent_reads_per_s"] and 0 < figures["sustained_reads_per_s"]
    assert 0 < figures["hit_latency_p50_ms"] <= figures["hit_latency_p99_ms"]
