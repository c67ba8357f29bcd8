"""The dashboards without Grafana: every panel's data as a PNG, and one HTML page linking them.

The report runs each panel's own SQL (expanded by :mod:`warehouse.grafana.macros` for the
requested range), so a chart in the e-mail and the chart on the wall screen cannot disagree.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from warehouse.grafana.dashboards import Dashboard
from warehouse.grafana.macros import Selection, TimeRange, expand, panel_interval_s
from warehouse.grafana.panels import Panel

matplotlib.use("Agg")  # files only, never a window: the report runs on servers and in CI

TABLE_ROWS = 25


@dataclass(frozen=True)
class PanelData:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    interval_s: int = 60
    """The time bucket the SQL grouped by: a column is this wide, however sparse the buckets."""

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass(frozen=True)
class Chart:
    dashboard: Dashboard
    panel: Panel
    path: Path
    rows: int
    error: str | None = None


def query_panel(
    client: Client,
    panel: Panel,
    start: datetime,
    end: datetime,
    variables: Mapping[str, Selection] | None = None,
) -> PanelData:
    """The panel's data, from the SQL Grafana would send for this range and selection."""
    interval = panel_interval_s(start, end, panel.min_interval)
    result = client.query(expand(panel.sql, TimeRange(start, end, interval), variables))
    return PanelData(tuple(result.column_names), [tuple(row) for row in result.result_rows], interval)


def render_report(
    client: Client,
    dashboards: Sequence[Dashboard],
    start: datetime,
    end: datetime,
    out: Path,
    variables: Mapping[str, Selection] | None = None,
    on_panel: Callable[[Panel], None] = lambda panel: None,
) -> Path:
    """Write one PNG per panel and ``index.html``; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    charts = []
    for dashboard in dashboards:
        for number, panel in enumerate(dashboard.panels, start=1):
            path = out / f"{dashboard.uid}-{number:02d}.png"
            try:
                data = query_panel(client, panel, start, end, variables)
            except DatabaseError as exc:
                # one broken panel (say, a table not migrated yet) must not cost the whole report
                error = str(exc).splitlines()[0]
                draw(panel, PanelData(panel.columns, []), path, note=f"query failed: {error[:200]}")
                charts.append(Chart(dashboard, panel, path, 0, error))
            else:
                draw(panel, data, path)
                charts.append(Chart(dashboard, panel, path, len(data.rows)))
            on_panel(panel)
    page = out / "index.html"
    page.write_text(_page(charts, start, end))
    return page


def draw(panel: Panel, data: PanelData, path: Path, note: str = "no data in this range") -> None:
    wide = panel.width > 12 or panel.style in ("matrix", "table")
    fig, ax = plt.subplots(figsize=(12 if wide else 7, 4.5), dpi=100)
    try:
        ax.set_title(panel.title)
        if not data.rows:
            ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, wrap=True)
            ax.set_axis_off()
        else:
            _DRAW[panel.style](ax, panel, data)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _series(panel: Panel, data: PanelData) -> dict[str, tuple[list[datetime], list[float]]]:
    """Long-format rows pivoted the way the plugin does: one series per label and value column."""
    times = data.column("time")
    labelled = len(panel.columns) > 2 and all(isinstance(v, str) for v in data.column(panel.columns[1]))
    label_col = panel.columns[1] if labelled else None
    value_cols = panel.columns[2:] if labelled else panel.columns[1:]
    series: dict[str, tuple[list[datetime], list[float]]] = defaultdict(lambda: ([], []))
    labels = data.column(label_col) if label_col else [""] * len(times)
    for col in value_cols:
        for t, label, value in zip(times, labels, data.column(col), strict=True):
            if value is None:
                continue
            name = " ".join(part for part in (label, col if len(value_cols) > 1 else "") if part) or col
            series[name][0].append(t)
            series[name][1].append(float(value))
    return series


def _lines(ax: Axes, panel: Panel, data: PanelData) -> None:
    for name, (times, values) in sorted(_series(panel, data).items()):
        ax.plot(times, values, label=name, linewidth=1)
    _time_axis(ax, panel)


def _columns(ax: Axes, panel: Panel, data: PanelData) -> None:
    """Stacked columns per time bucket, one colour per series."""
    series = _series(panel, data)
    buckets = sorted({t for times, _ in series.values() for t in times})
    width = timedelta(seconds=data.interval_s * 0.8)
    bottom = dict.fromkeys(buckets, 0.0)
    for name, (times, values) in sorted(series.items()):
        heights = dict(zip(times, values, strict=True))
        ax.bar(
            buckets,
            [heights.get(t, 0.0) for t in buckets],
            width=width,
            align="edge",
            bottom=[bottom[t] for t in buckets],
            label=name,
        )
        for t in buckets:
            bottom[t] += heights.get(t, 0.0)
    _time_axis(ax, panel)


def _time_axis(ax: Axes, panel: Panel) -> None:
    if panel.unit == "percentunit":  # Grafana's unit for a 0..1 share
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        ax.set_ylabel(panel.unit if panel.unit != "short" else "")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=4, loc="upper left")
    ax.figure.autofmt_xdate()


def _bars(ax: Axes, panel: Panel, data: PanelData) -> None:
    labels = [str(v) for v in data.column(panel.columns[0])][::-1]
    values = [float(v or 0) for v in data.column(panel.columns[1])][::-1]
    ax.barh(labels, values, color="tab:blue")
    ax.set_xlabel(panel.columns[1])


def _pie(ax: Axes, panel: Panel, data: PanelData) -> None:
    ax.pie(
        [float(v) for v in data.column(panel.columns[1])],
        labels=data.column(panel.columns[0]),
        autopct="%1.0f%%",
    )


def _map(ax: Axes, panel: Panel, data: PanelData) -> None:
    volume = [float(v or 0) for v in data.column(panel.columns[-1])]
    peak = max(volume) or 1.0
    lon, lat = data.column("lon"), data.column("lat")
    ax.scatter(lon, lat, s=[30 + 600 * v / peak for v in volume], alpha=0.6, color="tab:green")
    for x, y, name, v in zip(lon, lat, data.column("name"), volume, strict=True):
        ax.annotate(f"{name} ({v:,.0f})", (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.margins(0.2)


def _matrix(ax: Axes, panel: Panel, data: PanelData) -> None:
    rows = [str(r[0]) for r in data.rows]
    cells = [[float(v or 0) for v in r[1:]] for r in data.rows]
    image = ax.imshow(cells, aspect="auto", cmap="YlOrRd")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xticks(range(len(panel.columns) - 1), [c.lstrip("h") for c in panel.columns[1:]], fontsize=7)
    ax.set_xlabel("hour of day")
    ax.figure.colorbar(image, ax=ax, label="reads")


def _table(ax: Axes, panel: Panel, data: PanelData) -> None:
    ax.set_axis_off()
    cells = [[_cell(v) for v in row] for row in data.rows[:TABLE_ROWS]]
    table = ax.table(cellText=cells, colLabels=list(data.columns), loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


_DRAW: dict[str, Callable[[Axes, Panel, PanelData], None]] = {
    "lines": _lines,
    "columns": _columns,
    "bars": _bars,
    "pie": _pie,
    "map": _map,
    "matrix": _matrix,
    "table": _table,
}


def _page(charts: Sequence[Chart], start: datetime, end: datetime) -> str:
    esc = html.escape
    sections: dict[str, list[str]] = defaultdict(list)
    titles: dict[str, str] = {}
    for chart in charts:
        titles[chart.dashboard.uid] = chart.dashboard.title
        sections[chart.dashboard.uid].append(
            f'<figure><a href="{esc(chart.path.name)}"><img src="{esc(chart.path.name)}" '
            f'alt="{esc(chart.panel.title)}" width="600"></a>'
            f"<figcaption>{esc(chart.panel.title)}: "
            f"{esc(f'query failed: {chart.error}') if chart.error else f'{chart.rows} rows'}. "
            f"{esc(chart.panel.description)}</figcaption></figure>"
        )
    body = "\n".join(
        f'<section id="{esc(uid)}"><h2>{esc(titles[uid])}</h2>\n' + "\n".join(figures) + "</section>"
        for uid, figures in sections.items()
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Gantry report</title>\n'
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:0.5em;"
        "vertical-align:top;max-width:600px}figcaption{font-size:0.85em;color:#444}</style></head>\n"
        f"<body><h1>Gantry report</h1><p>{esc(start.isoformat())} to {esc(end.isoformat())} (UTC)</p>\n"
        f"{body}\n</body></html>\n"
    )
