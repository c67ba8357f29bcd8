"""Every panel's SQL, expanded as Grafana would, against a warehouse with known contents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dashboards_data import END, START

from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.macros import ALL, TimeRange, expand
from warehouse.grafana.report import PanelData, query_panel

pytestmark = pytest.mark.integration


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def dashboards(config):
    return {d.uid: d for d in all_dashboards(config)}


def run(filled, dashboards, uid, title, start=START, end=END, **variables) -> PanelData:
    client, _ = filled
    panel = dashboards[uid].panel(title)
    data = query_panel(client, panel, start, end, variables)
    assert data.columns == panel.columns or not data.rows  # an empty result names no columns
    return data


def test_every_panel_returns_its_declared_columns(filled, config):
    client, _ = filled
    for dashboard in all_dashboards(config):
        for panel in dashboard.panels:
            data = query_panel(client, panel, START - timedelta(days=1), END)
            assert data.columns == panel.columns, f"{dashboard.uid}: {panel.title}"
            assert data.rows, f"{dashboard.uid}: {panel.title} returned nothing"


def test_reads_per_minute_add_up_per_camera_and_in_total(filled, dashboards):
    _, expected = filled
    by_camera = run(filled, dashboards, "gantry-city-traffic", "Reads per minute by camera")
    totals: dict[str, float] = {}
    for _, camera, per_min in by_camera.rows:
        totals[camera] = totals.get(camera, 0) + per_min
    assert totals == expected.reads_by_camera  # duplicated deliveries counted once
    total = run(filled, dashboards, "gantry-city-traffic", "Total reads per minute")
    assert {t: v for t, v in total.rows} == {naive(m): n for m, n in expected.reads_by_minute.items()}


def test_wider_buckets_still_show_reads_per_minute(filled, dashboards):
    _, expected = filled
    client, _ = filled
    panel = dashboards["gantry-city-traffic"].panel("Total reads per minute")
    rows = client.query(expand(panel.sql, TimeRange(START, END, 600))).result_rows
    assert sum(v * 10 for _, v in rows) == pytest.approx(sum(expected.reads_by_minute.values()))


def test_camera_variable_filters(filled, dashboards):
    _, expected = filled
    busiest = run(filled, dashboards, "gantry-city-traffic", "Busiest cameras", camera=["c1", "c3"])
    assert busiest.rows == [("c3", expected.reads_by_camera["c3"]), ("c1", expected.reads_by_camera["c1"])]
    everyone = run(filled, dashboards, "gantry-city-traffic", "Busiest cameras", camera=ALL)
    assert everyone.rows == sorted(expected.reads_by_camera.items(), key=lambda kv: -kv[1])


def test_geomap_places_every_configured_camera_with_its_volume(filled, dashboards, config):
    _, expected = filled
    data = run(filled, dashboards, "gantry-city-traffic", "Cameras by read volume")
    assert {(c, lat, lon, n) for c, _, lat, lon, n in data.rows} == {
        (cam.id, cam.lat, cam.lon, expected.reads_by_camera[cam.id]) for cam in config.cameras
    }


def test_low_confidence_share_per_minute(filled, dashboards):
    _, expected = filled
    data = run(filled, dashboards, "gantry-city-traffic", "Share of low-confidence reads")
    assert {t.replace(tzinfo=UTC): share for t, share in data.rows} == pytest.approx(
        {m: expected.low_by_minute[m] / n for m, n in expected.reads_by_minute.items()}
    )
    assert 0 < min(share for _, share in data.rows) < max(share for _, share in data.rows) < 1


def test_low_confidence_share_of_the_selected_cameras(filled, dashboards):
    _, expected = filled
    data = run(
        filled, dashboards, "gantry-city-traffic", "Share of low-confidence reads", camera=["c2", "c4"]
    )
    wanted = {}
    for minute in expected.reads_by_minute:
        keys = [("c2", minute), ("c4", minute)]
        low = sum(expected.low_by_camera_minute[k] for k in keys)
        wanted[minute] = low / sum(expected.reads_by_camera_minute[k] for k in keys)
    assert {t.replace(tzinfo=UTC): share for t, share in data.rows} == pytest.approx(wanted)


def test_peak_hours_matrix_puts_reads_in_their_weekday_and_hour(filled, dashboards):
    _, expected = filled
    data = run(filled, dashboards, "gantry-city-traffic", "Peak hours")
    assert [r[0] for r in data.rows] == ["Mon"]  # START is a Monday; London is on UTC in November
    cells = dict(zip(data.columns[1:], data.rows[0][1:], strict=True))
    assert cells == {f"h{h:02d}": expected.reads_by_hour.get(START.replace(hour=h), 0) for h in range(24)}


def test_travel_time_series_and_journey_counts(filled, dashboards):
    _, expected = filled
    series = run(
        filled, dashboards, "gantry-journey-times", "Travel time by segment (median and 85th percentile)"
    )
    last_hour = naive(END - timedelta(hours=1))
    for time, segment, median, p85 in series.rows:
        wanted = expected.current_median[segment] if time >= last_hour else expected.typical_median[segment]
        assert (median, p85) == pytest.approx((wanted, wanted * 1.2))
    journeys = run(filled, dashboards, "gantry-journey-times", "Matched journeys per interval")
    totals: dict[str, int] = {}
    for _, segment, n in journeys.rows:
        totals[segment] = totals.get(segment, 0) + n
    assert totals == expected.journeys_by_segment  # the stats row delivered twice counts once


def test_now_versus_typical_and_slowest_segments(filled, dashboards):
    _, expected = filled
    data = run(filled, dashboards, "gantry-journey-times", "Now vs typical for this time of week")
    assert data.rows == [
        (
            s,
            expected.current_median[s],
            expected.typical_median[s],
            round(expected.current_median[s] / expected.typical_median[s], 2),
        )
        for s in ("s1", "s2")
    ]
    slowest = run(filled, dashboards, "gantry-journey-times", "Slowest segments now", segment=["s2"])
    assert slowest.rows == [("s2", pytest.approx(4500 / 300 * 3.6))]


def test_zone_entries_count_reads_at_the_zones_inbound_cameras(filled, dashboards):
    _, expected = filled
    data = run(filled, dashboards, "gantry-congestion-zone", "Zone entries per hour", zone=["z1"])
    assert sum(n for _, _, n in data.rows) == expected.reads_by_camera["c1"]  # c2 faces out
    assert run(filled, dashboards, "gantry-congestion-zone", "Zone entries per hour", zone=["zz"]).rows == []


def test_charges_and_revenue_per_closed_day(filled, dashboards):
    _, expected = filled
    day_before = START - timedelta(days=1)
    charges = run(filled, dashboards, "gantry-congestion-zone", "Charges per day", start=day_before)
    revenue = run(filled, dashboards, "gantry-congestion-zone", "Revenue per day", start=day_before)
    closed = datetime.combine(expected.closed_day, datetime.min.time())
    assert charges.rows == [(closed, "z1", expected.closed_charges)]  # the later close wins; today is open
    assert revenue.rows == [(closed, "z1", pytest.approx(expected.closed_revenue))]


def test_charge_status_shares_and_entry_cameras_use_the_latest_version(filled, dashboards):
    _, expected = filled
    day_before = START - timedelta(days=1)
    shares = run(
        filled, dashboards, "gantry-congestion-zone", "Exempt and discounted shares", start=day_before
    )
    assert dict(shares.rows) == expected.charges_by_status
    cameras = run(filled, dashboards, "gantry-congestion-zone", "Top entry cameras", start=day_before)
    assert dict(cameras.rows) == expected.first_camera


def test_hotlist_hits_by_list_and_recent_hits(filled, dashboards):
    _, expected = filled
    by_list = run(filled, dashboards, "gantry-hotlist", "Hits by list")
    totals: dict[str, int] = {}
    for _, listed, n in by_list.rows:
        totals[listed] = totals.get(listed, 0) + n
    assert totals == expected.hits_by_list
    recent = run(filled, dashboards, "gantry-hotlist", "Recent hits")
    assert len(recent.rows) == sum(expected.hits_by_list.values())  # redelivered hits shown once
    assert recent.rows[0][0] == naive(expected.latest_hit)
    stolen = run(filled, dashboards, "gantry-hotlist", "Recent hits", list=["stolen"], camera=["c3"])
    assert {r[2] for r in stolen.rows} == {"stolen"} and {r[3] for r in stolen.rows} == {"c3"}


def test_delivery_failures_per_minute_count_a_replayed_failure_once(filled, dashboards):
    _, expected = filled
    data = run(filled, dashboards, "gantry-hotlist", "Webhook delivery failures")
    assert {naive(t): n for t, n in data.rows} == {
        naive(m): n for m, n in expected.failures_by_minute.items()
    }
    wider = run(
        filled, dashboards, "gantry-hotlist", "Webhook delivery failures", start=START - timedelta(days=1)
    )
    assert sum(n for _, n in wider.rows) == sum(expected.failures_by_minute.values()) == 9


def test_variable_queries_list_the_values_in_the_warehouse(filled, config):
    client, _ = filled
    found = {
        v.name: [r[0] for r in client.query(v.sql).result_rows]
        for d in all_dashboards(config)
        for v in d.variables
    }
    assert found == {
        "camera": ["c1", "c3"],
        "segment": ["s1", "s2"],
        "zone": ["z1"],
        "list": ["police", "stolen"],
        "car_park": ["p1"],
    }
