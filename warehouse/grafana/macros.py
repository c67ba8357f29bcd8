"""Expand panel SQL the way Grafana and the ClickHouse data source plugin do before it runs.

A panel's ``rawSql`` passes three steps in Grafana: the plugin's frontend resolves
``$__conditionalAll(condition, $var)``, Grafana interpolates the template variables, and the
plugin's backend expands the time macros. Tests and ``gantry report`` run the very same SQL the
dashboards hold, so this module mirrors those steps (grafana/clickhouse-datasource
``pkg/macros/macros.go`` and ``applyConditionalAll``) for the macros our panels use:

``$__timeFilter(col)``, ``$__timeFilter_ms(col)``, ``$__dateFilter(col)``, ``$__fromTime``,
``$__toTime``, ``$__fromTime_ms``, ``$__toTime_ms``, ``$__timeInterval(col)``, ``$__interval_s``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

ALL = "$__all"
_CONDITIONAL_ALL = "$__conditionalAll("
_MACRO = re.compile(r"\$__(\w+)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker and the interval Grafana derives from the panel width."""

    start: datetime
    end: datetime
    interval_s: int = 60

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"time range ends ({self.end}) before it starts ({self.start})")


Selection = str | Sequence[str]
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_s(text: str) -> int:
    """Seconds in a Grafana duration such as ``30s``, ``5m``, ``1h``, ``1d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected a number and one of s, m, h, d, w)")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def panel_interval_s(start: datetime, end: datetime, min_interval: str | None, max_points: int = 300) -> int:
    """The bucket Grafana picks: the range over the panel's points, never below its min interval.

    Grafana rounds to "nice" steps; whole minutes are close enough for the report and tests.
    """
    auto = max(60, -(-int((end - start).total_seconds() / max_points) // 60) * 60)
    return max(auto, duration_s(min_interval) if min_interval else 1)


def expand(sql: str, time_range: TimeRange, variables: Mapping[str, Selection] | None = None) -> str:
    """The SQL a panel sends to ClickHouse for this time range and these variable selections.

    A variable maps to one value, a list of values, or :data:`ALL`; a list containing ALL
    behaves as "All" as in Grafana.
    """
    selections = {name: _values(value) for name, value in (variables or {}).items()}
    sql = _conditional_all(sql, selections)
    sql = _interpolate(sql, selections)
    return _time_macros(sql, time_range)


def _values(selection: Selection) -> list[str]:
    return [selection] if isinstance(selection, str) else list(selection)


def _conditional_all(sql: str, selections: Mapping[str, list[str]]) -> str:
    """Keep the condition when a variable selects values, ``1=1`` when it selects All."""
    at = sql.rfind(_CONDITIONAL_ALL)
    while at != -1:
        args, end = _macro_args(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll needs 2 arguments, got {len(args)}: {sql[at:end]}")
        condition, variable = args[0], args[1].strip().lstrip("$").strip("{}")
        chosen = selections.get(variable, [ALL])
        phrase = "1=1" if not chosen or ALL in chosen else condition
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(_CONDITIONAL_ALL, 0, at)
    return sql


def _interpolate(sql: str, selections: Mapping[str, list[str]]) -> str:
    """Grafana's template interpolation for ``$var``, ``${var}`` and ``${var:singlequote}``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name.startswith("__") or name not in selections:
            return match.group(0)
        values = selections[name]
        fmt = match.group(2)
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        if fmt not in (None, "raw", "csv"):
            raise ValueError(f"unsupported variable format {fmt!r} in {match.group(0)}")
        return ",".join(values)

    return _VARIABLE.sub(replace, sql)


def _time_macros(sql: str, time_range: TimeRange) -> str:
    def seconds(ts: datetime) -> int:
        return int(ts.astimezone(UTC).timestamp())

    def millis(ts: datetime) -> int:
        return int(ts.astimezone(UTC).timestamp() * 1000)

    start, end = time_range.start, time_range.end
    interval = max(time_range.interval_s, 1)
    values = {
        "fromTime": f"toDateTime({seconds(start)})",
        "toTime": f"toDateTime({seconds(end)})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({millis(start)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({millis(end)})",
        "interval_s": str(interval),
    }
    functions = {
        "timeFilter": lambda c: f"{c} >= toDateTime({seconds(start)}) AND {c} <= toDateTime({seconds(end)})",
        "timeFilter_ms": lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({millis(start)}) AND {c} <= fromUnixTimestamp64Milli({millis(end)})"
        ),
        "dateFilter": lambda c: (
            f"{c} >= toDate('{start.astimezone(UTC):%Y-%m-%d}') AND {c} <= toDate('{end.astimezone(UTC):%Y-%m-%d}')"
        ),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval} second)",
    }
    out: list[str] = []
    pos = 0
    for match in _MACRO.finditer(sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        out.append(sql[pos : match.start()])
        if name in functions:
            args, end_at = _macro_args(sql, match.end())
            if len(args) != 1 or not args[0].strip():
                raise ValueError(f"$__{name} needs 1 argument: {sql[match.start() : end_at]}")
            out.append(functions[name](args[0].strip()))
            pos = end_at
        elif name in values:
            pos = match.end()
            if sql.startswith("()", pos):
                pos += 2
            out.append(values[name])
        else:
            raise ValueError(f"unknown macro $__{name}")
    out.append(sql[pos:])
    return "".join(out)


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose ``(`` is at ``open_paren``, and its end."""
    if open_paren >= len(sql) or sql[open_paren] != "(":
        raise ValueError(f"macro without arguments near: {sql[max(open_paren - 20, 0) : open_paren + 20]}")
    depth, args, current = 0, [], []
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current))
                return args, i + 1
        elif char == "," and depth == 1:
            args.append("".join(current))
            current = []
            continue
        current.append(char)
    raise ValueError(f"unbalanced parentheses in macro call: {sql[open_paren:]}")
