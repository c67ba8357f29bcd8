"""The car parks dashboard's panels against the warehouse's known stays and gate decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dashboards_data import END, START

from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.macros import TimeRange, expand
from warehouse.grafana.report import query_panel

pytestmark = pytest.mark.integration
UID = "gantry-car-parks"


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def dashboard(config):
    return next(d for d in all_dashboards(config) if d.uid == UID)


def rows(filled, dashboard, title, start=START, end=END, **variables):
    client, _ = filled
    panel = dashboard.panel(title)
    data = query_panel(client, panel, start, end, variables)
    assert data.columns == panel.columns or not data.rows
    return data.rows


def test_occupancy_now_counts_open_stays_against_capacity(filled, dashboard):
    _, expected = filled
    assert [tuple(r) for r in rows(filled, dashboard, "Occupancy now")] == [("p1", expected.occupied_now["p1"], 10)]


def test_occupancy_over_time_counts_the_cars_inside_at_each_instant(filled, dashboard):
    client, expected = filled
    panel = dashboard.panel("Occupancy over time")
    got = {naive(t): n for t, _, n in client.query(expand(panel.sql, TimeRange(START, END, 600))).result_rows}
    for instant in (START + timedelta(minutes=m) for m in (0, 30, 60, 110, 170)):
        inside = sum(entry <= instant and (exit_ is None or instant < exit_) for entry, exit_ in expected.stays)
        assert got[naive(instant)] == inside, instant


def test_entries_and_exits_per_hour_count_the_cars_let_through_once(filled, dashboard):
    _, expected = filled
    got = {(naive(t), direction): n for t, direction, n in rows(filled, dashboard, "Entries and exits per hour")}
    assert got == {(naive(hour), direction): n for (hour, direction), n in expected.passages_by_hour.items()}


def test_dwell_time_and_revenue_per_day_leave_out_withdrawn_and_superseded_versions(filled, dashboard):
    _, expected = filled
    assert dict(rows(filled, dashboard, "Dwell time")) == dict(expected.stays_by_dwell)
    revenue = rows(filled, dashboard, "Revenue per day", end=END + timedelta(hours=1))
    assert {naive(t).date(): r for t, _, r in revenue} == expected.parking_revenue_by_day


def test_denied_attempts_by_reason_and_the_latest_ones(filled, dashboard):
    _, expected = filled
    by_reason: dict[str, int] = {}
    for _, reason, n in rows(filled, dashboard, "Denied attempts"):
        by_reason[reason] = by_reason.get(reason, 0) + n
    assert by_reason == dict(expected.denied_by_reason)
    recent = rows(filled, dashboard, "Recent denied attempts")
    assert [r[1] for r in recent] == ["NO2", "NO1", "NO0"] and recent[0][4] == "deny_list"


def test_the_car_park_variable_filters(filled, dashboard):
    assert rows(filled, dashboard, "Occupancy now", car_park=["elsewhere"]) == []
    assert rows(filled, dashboard, "Dwell time", car_park=["p1"])
