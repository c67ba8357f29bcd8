"""The plugin's macros expand exactly as grafana/clickhouse-datasource expands them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from warehouse.grafana.macros import ALL, TimeRange, duration_s, expand, panel_interval_s

START = datetime(2026, 11, 21, 8, 0, 0, 123000, tzinfo=UTC)
END = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
RANGE = TimeRange(START, END, interval_s=120)
FROM_S, TO_S = int(START.timestamp()), int(END.timestamp())


def test_time_filter_in_seconds_and_milliseconds():
    assert expand("WHERE $__timeFilter(ts)", RANGE) == (
        f"WHERE ts >= toDateTime({FROM_S}) AND ts <= toDateTime({TO_S})"
    )
    assert expand("$__timeFilter_ms(c.ts)", RANGE) == (
        f"c.ts >= fromUnixTimestamp64Milli({FROM_S * 1000 + 123}) AND c.ts <= fromUnixTimestamp64Milli({TO_S * 1000})"
    )


def test_bounds_interval_and_date_filter():
    sql = "$__fromTime, $__toTime(), $__fromTime_ms, $__interval_s, $__dateFilter(charge_date)"
    assert expand(sql, RANGE) == (
        f"toDateTime({FROM_S}), toDateTime({TO_S}), fromUnixTimestamp64Milli({FROM_S * 1000 + 123}), 120, "
        "charge_date >= toDate('2026-11-21') AND charge_date <= toDate('2026-11-21')"
    )


def test_time_interval_buckets_by_the_interval_and_never_below_one_second():
    assert (
        expand("$__timeInterval(minute)", RANGE)
        == "toStartOfInterval(toDateTime(minute), INTERVAL 120 second)"
    )
    assert expand("$__timeInterval(minute)", TimeRange(START, END, 0)).endswith("INTERVAL 1 second)")


def test_bounds_are_utc_whatever_the_caller_zone():
    paris = timezone(timedelta(hours=1))
    shifted = TimeRange(START.astimezone(paris), END.astimezone(paris))
    assert expand("$__fromTime", shifted) == f"toDateTime({FROM_S})"


def test_conditional_all_drops_the_condition_for_all_and_keeps_it_for_a_selection():
    sql = "WHERE $__conditionalAll(camera_id IN (${camera:singlequote}), $camera) AND 1"
    assert expand(sql, RANGE, {"camera": ALL}) == "WHERE 1=1 AND 1"
    assert expand(sql, RANGE) == "WHERE 1=1 AND 1"
    assert expand(sql, RANGE, {"camera": ["c1", "c'2"]}) == "WHERE camera_id IN ('c1','c\\'2') AND 1"
    assert expand(sql, RANGE, {"camera": "c1"}) == "WHERE camera_id IN ('c1') AND 1"


def test_conditional_all_with_nested_calls_and_several_variables():
    sql = "$__conditionalAll(lower(a) IN (${a:singlequote}), $a) AND $__conditionalAll(b IN (${b:singlequote}), ${b})"
    assert expand(sql, RANGE, {"a": ["x"], "b": ALL}) == "lower(a) IN ('x') AND 1=1"


def test_plain_variables_and_unknown_names_are_left_alone():
    assert (
        expand("SELECT '$zone', ${zone}, $other", RANGE, {"zone": ["z1", "z2"]})
        == "SELECT 'z1,z2', z1,z2, $other"
    )


@pytest.mark.parametrize("sql", ["$__timeFilter()", "$__timeFilter(a, b)", "$__nope", "$__timeFilter(ts"])
def test_malformed_or_unknown_macros_are_errors(sql):
    with pytest.raises(ValueError):
        expand(sql, RANGE)


def test_time_range_must_be_aware_and_ordered():
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRange(START.replace(tzinfo=None), END)
    with pytest.raises(ValueError, match="before it starts"):
        TimeRange(END, START)


def test_durations_and_the_panel_interval():
    assert [duration_s(d) for d in ("30s", "5m", "1h", "1d", "1w")] == [30, 300, 3600, 86400, 604800]
    with pytest.raises(ValueError, match="not a duration"):
        duration_s("5 minutes")
    assert panel_interval_s(START, START + timedelta(hours=3), None) == 60
    assert panel_interval_s(START, START + timedelta(hours=3), "5m") == 300
    assert panel_interval_s(START, START + timedelta(days=30), "1m") == 8640
