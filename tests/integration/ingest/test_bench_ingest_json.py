"""``gantry bench ingest --json`` is read by scripts: its last line is one JSON object with the
figures the targets are stated in, measured on the durable broker ``gantry up`` runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bench_ingest_json_ends_with_one_object_of_figures():
    run = subprocess.run(
        [sys.executable, "-m", "gantry", "bench", "ingest", "--events", "200", "--concurrency", "8",
         "--rate", "50", "--rate-seconds", "1", "--storage", "disk", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["storage"] == "disk"
    assert figures["events"] == 200 and figures["flat_out_failures"] == 0
    assert figures["paced_events"] == 50 and figures["paced_failures"] == 0
    assert figures["events_per_s"] > 0
    assert 0 < figures["ack_p50_ms"] <= figures["ack_p99_ms"]
    assert figures["reader_frames"] > 0
