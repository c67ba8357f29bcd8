"""One panel, described once: its SQL, the columns it returns and how to draw it.

The same :class:`Panel` becomes a Grafana panel (``to_grafana``) and a PNG in ``gantry report``,
so the SQL behind a chart has one source of truth. A panel's ``style`` names the picture, not the
Grafana plugin: the mapping to panel types lives here and in :mod:`warehouse.grafana.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "gantry-clickhouse"
DATASOURCE_NAME = "Gantry ClickHouse"
DATASOURCE_REF: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}

Style = Literal["lines", "columns", "bars", "table", "matrix", "map", "pie"]

# Grafana panel plugin per style; "matrix" is a table whose cells are coloured by value (a
# weekday x hour heatmap: Grafana's heatmap panel needs a time axis, which hour-of-day is not).
_PANEL_TYPE: dict[Style, str] = {
    "lines": "timeseries",
    "columns": "timeseries",
    "bars": "barchart",
    "table": "table",
    "matrix": "table",
    "map": "geomap",
    "pie": "piechart",
}
# The plugin's query formats (src/types/sql.ts QueryType, and the backend's Format numbers).
_TIME_SERIES = {"queryType": "timeSeries", "format": 0}
_TABLE = {"queryType": "table", "format": 1}


@dataclass(frozen=True)
class Panel:
    """A chart: ``columns`` is exactly what ``sql`` returns, in order (tests hold it to that).

    Time series return ``time`` first, then an optional text column naming the series (long
    format, which the plugin pivots), then the values. Categorical styles return the category
    first. ``min_interval`` stops Grafana asking for buckets finer than the table's grain.
    """

    title: str
    style: Style
    sql: str
    columns: tuple[str, ...]
    description: str = ""
    unit: str = "short"
    width: int = 12
    height: int = 8
    min_interval: str | None = None

    @property
    def panel_type(self) -> str:
        return _PANEL_TYPE[self.style]

    @property
    def is_time_series(self) -> bool:
        return self.style in ("lines", "columns")

    def target(self) -> dict[str, Any]:
        return {
            "refId": "A",
            "datasource": DATASOURCE_REF,
            "editorType": "sql",
            "rawSql": self.sql,
            **(_TIME_SERIES if self.is_time_series else _TABLE),
        }

    def to_grafana(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.panel_type,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE_REF,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [self.target()],
            "fieldConfig": {"defaults": {"unit": self.unit, **self._field_defaults()}, "overrides": []},
            "options": self._options(),
        }
        if self.min_interval:
            panel["interval"] = self.min_interval
        return panel

    def _field_defaults(self) -> dict[str, Any]:
        if self.style == "columns":
            return {"custom": {"drawStyle": "bars", "fillOpacity": 80}}
        if self.style == "lines":
            return {"custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}}
        if self.style == "matrix":
            return {
                "color": {"mode": "continuous-GrYlRd"},
                "custom": {"cellOptions": {"type": "color-background"}},
            }
        return {}

    def _options(self) -> dict[str, Any]:
        legend = {"displayMode": "list", "placement": "bottom", "showLegend": True}
        if self.is_time_series:
            return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
        if self.style == "bars":
            return {
                "orientation": "horizontal",
                "legend": legend,
                "tooltip": {"mode": "single", "sort": "none"},
            }
        if self.style == "pie":
            return {
                "pieType": "pie",
                "legend": {**legend, "values": ["percent"]},
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            }
        if self.style == "map":
            return _geomap_options(size_field=self.columns[-1])
        return {"showHeader": True, "cellHeight": "sm"}


def _geomap_options(size_field: str) -> dict[str, Any]:
    """Markers at each camera's lat/lon, sized by the last column (its recent read volume)."""
    return {
        "view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 12},
        "controls": {"showZoom": True, "mouseWheelZoom": True},
        "basemap": {"type": "default", "name": "Basemap"},
        "layers": [
            {
                "type": "markers",
                "name": "Cameras",
                "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                "tooltip": True,
                "config": {
                    "showLegend": True,
                    "style": {
                        "size": {"field": size_field, "min": 4, "max": 30, "fixed": 5},
                        "color": {"fixed": "dark-green"},
                        "opacity": 0.6,
                    },
                },
            }
        ],
        "tooltip": {"mode": "details"},
    }
