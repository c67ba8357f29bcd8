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
from gantry.site_events import ParkingPayment
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
DAY_START = datetime(2026, 11, 24, tzinfo=UTC)
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


def test_the_export_reconciles_each_stays_fee_with_the_payments_the_sink_stored(warehouse, tmp_path):
    migrate(warehouse, RetentionConfig())
    sessions = sessions_of(simulate(200, GateFaults(missed_entries=0.1, missed_exits=0.05)).decisions)
    load(warehouse, topics.PARKING_SESSIONS, sessions)
    latest = {s.session_id: s for s in sessions}  # sent in version order: the last is the stay
    start, end = local_day_bounds(DAY, PARK.timezone)
    owing = sorted((s for s in latest.values() if not s.withdrawn and s.exit_ts is not None and start <= s.exit_ts < end
                    and s.fee > 0), key=lambda s: s.session_id)
    assert {"closed", "entry_missed"} <= {s.status for s in owing[::2]}

    def paid(stay, minutes_before_exit: int, amount: Decimal, entry_ts="same") -> ParkingPayment:
        at = stay.exit_ts - timedelta(minutes=minutes_before_exit)
        return ParkingPayment(payment_id=f"pay-{stay.session_id}-{minutes_before_exit}", car_park_id=PARK_ID,
                              plate=stay.plate, stay_entry_ts=stay.entry_ts if entry_ts == "same" else entry_ts,
                              paid_at=at, amount=amount, currency="GBP")

    # Every second stay paid its fee just before leaving (a closed one in two payments); the others
    # not at all, one of them with a payment for another stay of its plate that must not count.
    twice = next(s for s in owing[::2] if s.status == "closed" and s.fee > 1)
    payments = [paid(s, 2, s.fee) for s in owing[::2] if s is not twice]
    payments += [paid(twice, 40, twice.fee - Decimal("1.00")), paid(twice, 3, Decimal("1.00"))]
    elsewhere = (owing[1].entry_ts or DAY_START) - timedelta(days=1)
    payments.append(paid(owing[1], 60 * 24, Decimal("9.00"), entry_ts=elsewhere))
    load(warehouse, topics.PARKING_PAYMENTS, payments)

    manifest = export_revenue(warehouse, PARK, DAY, "csv", tmp_path, lateness_s=LATENESS_S)
    rows = {r["session_id"]: Decimal(str(r["paid"])) for r in
            pa_csv.read_csv(tmp_path / f"parking_{PARK_ID}_{DAY}.csv").to_pylist()}
    expected = {s.session_id: s.fee if n % 2 == 0 else Decimal("0.00") for n, s in enumerate(owing)}
    assert {sid: rows[sid] for sid in expected} == expected
    assert all(v == 0 for sid, v in rows.items() if sid not in expected)  # free stays, stays of no payment
    total = sum(expected.values(), Decimal("0.00"))
    assert (Decimal(manifest.paid), Decimal(manifest.owed)) == (total, Decimal(manifest.revenue) - total)
