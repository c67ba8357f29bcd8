"""Gate decisions and parking sessions through the sink's insert path, and the car-park revenue
export: exactly the simulated car park's stays and fees of a local day, reproducibly."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow.csv as pa_csv
import pytest
from warehouse_helpers import load

from gantry import topics
from gantry.config import RetentionConfig
from gantry.sites import Site
from stream_jobs.parking.job import passage_of
from stream_jobs.parking.simulator import PARK_ID, GateFaults, simulate, site
from stream_jobs.parking.stays import PlateStays, update
from warehouse.migrations import migrate
from warehouse.parking_export import DayNotOver, export_revenue, local_day_bounds

pytestmark = pytest.mark.integration
SITE = Site.model_validate(site())
PARK = SITE.car_park(PARK_ID)
DAY = date(2026, 11, 24)
LATENESS_S = 300


def sessions_of(decisions) -> list:
    """Every version the parking job would send, withdrawals included, in order."""
    states: dict[str, PlateStays] = {}
    sent, watermark = [], datetime(2026, 1, 1, tzinfo=UTC)
    for decision in decisions:
        passage = passage_of(decision)
        stays = states.setdefault(decision.plate, PlateStays())
        if passage is None or any(p.read_id == passage.read_id for p in stays.passages):
            continue
        stays.passages.append(passage)
        watermark = max(watermark, passage.ts)
        sent += update(stays, decision.plate, PARK, SITE.free_lists(), now=watermark, dedup_s=10,
                       horizon=watermark - timedelta(seconds=LATENESS_S))
    return sent


def test_revenue_of_a_local_day_is_exactly_the_simulated_stays_that_ended_then(warehouse, tmp_path):
    migrate(warehouse, RetentionConfig())
    simulation = simulate(200, GateFaults(missed_entries=0.05, missed_exits=0.05, second_looks=0.2, disorder_s=60))
    load(warehouse, topics.GATE_DECISIONS, simulation.decisions)
    load(warehouse, topics.PARKING_SESSIONS, sessions_of(simulation.decisions))
    assert warehouse.command("SELECT count() FROM gate_decisions FINAL") == len({d.read_id for d in simulation.decisions})

    ts_of = {d.read_id: d.ts for d in simulation.decisions}
    start, end = local_day_bounds(DAY, PARK.timezone)
    ended = [s for s in simulation.expected if s.status != "open"
             and start <= ts_of[s.exit_read_id or s.entry_read_id] < end]
    assert len(ended) > 20

    with pytest.raises(DayNotOver, match="has not ended"):
        export_revenue(warehouse, PARK, DAY, "csv", tmp_path, lateness_s=LATENESS_S, now=end)
    first = export_revenue(warehouse, PARK, DAY, "csv", tmp_path / "1", lateness_s=LATENESS_S)
    second = export_revenue(warehouse, PARK, DAY, "csv", tmp_path / "2", lateness_s=LATENESS_S)
    name = f"parking_{PARK_ID}_{DAY}.csv"
    data = (tmp_path / "1" / name).read_bytes()
    assert data == (tmp_path / "2" / name).read_bytes() and first == second
    manifest = json.loads((tmp_path / "1" / f"parking_{PARK_ID}_{DAY}.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["final"] is True
    assert (manifest["rows"], manifest["revenue"], manifest["currency"]) == (
        len(ended), str(sum((Decimal(s.fee) for s in ended), Decimal("0.00"))), "GBP")
    rows = pa_csv.read_csv(tmp_path / "1" / name).to_pylist()
    exported = {(r["plate"], r["status"], r["entry_read_id"] or None, r["exit_read_id"] or None,  # CSV: null is ""
                 f"{Decimal(str(r['fee'])):.2f}") for r in rows}
    assert exported == {(s.plate, s.status, s.entry_read_id, s.exit_read_id, s.fee) for s in ended}
    assert manifest["stays_by_status"] == {status: sum(s.status == status for s in ended)
                                           for status in sorted({s.status for s in ended})}
