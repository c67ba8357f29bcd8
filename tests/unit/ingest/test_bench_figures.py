"""The HTTP benches (``gantry bench ingest``, ``gantry bench gate``) report their two runs through one
function each for ``--json`` and the table, under the names scripts and docs/benchmarks.md use."""

from __future__ import annotations

from rich.console import Console

from ingest.bench import HttpFigures, load_figures, load_table

FLAT_OUT = HttpFigures(events=400, seconds=2.0, failures=1, latencies_ms=[float(n) for n in range(1, 101)])
PACED = HttpFigures(events=100, seconds=1.0, failures=0, latencies_ms=[2.0] * 99 + [40.0])


def test_ingest_figures_name_the_acknowledgement_latency():
    figures = load_figures(FLAT_OUT, PACED, 64, 500, counted="events", latency="ack_")
    assert figures == {
        "events": 400, "concurrency": 64, "events_per_s": 200.0, "flat_out_ack_p50_ms": 50.5,
        "flat_out_ack_p99_ms": 99.01, "flat_out_failures": 1, "paced_rate_per_s": 500, "paced_events": 100,
        "paced_achieved_per_s": 100.0, "ack_p50_ms": 2.0, "ack_p99_ms": 2.38, "paced_failures": 0,
    }


def test_gate_figures_count_decisions_and_table_shows_both_runs():
    figures = load_figures(FLAT_OUT, PACED, 32, 200, counted="decisions")
    assert {"decisions", "decisions_per_s", "flat_out_p99_ms", "paced_decisions", "p99_ms"} <= figures.keys()
    console = Console(width=120, record=True)
    console.print(load_table("gate", figures, counted="decisions", per_s="decisions/s"))
    shown = console.export_text()
    assert "decisions/s" in shown and "flat out, 32 connections" in shown and "paced at 200/s" in shown
    assert "99.0" in shown and "2.4" in shown
