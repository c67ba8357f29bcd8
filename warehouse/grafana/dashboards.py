"""The five Gantry dashboards, generated from the configuration (the car parks' in :mod:`.parking`).

Every chart reads an aggregate (``camera_counts_1m``, ``segment_stats``, ``zone_days``) or a
table of rare events (hits, charges, webhook failures), and never scans ``plate_reads``. Camera
positions and zone membership are not in the warehouse: they come from ``gantry.yaml`` and are
written into the SQL as a ``VALUES`` table when the dashboards are generated, so ``gantry
dashboards push``/``export`` must be re-run after cameras or zones change. Tables written
at-least-once are read so that a repeated row cannot double a figure (``uniqExact`` of the
stable id, ``FINAL`` on the replacing table, ``argMax``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gantry.config import GantryConfig
from warehouse.grafana.panels import DATASOURCE_REF, Panel
from warehouse.schema import LOW_CONFIDENCE

FOLDER_UID = "gantry"
FOLDER_TITLE = "Gantry"
GRID_WIDTH = 24
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TYPICAL_WEEKS = 4


@dataclass(frozen=True)
class Variable:
    """A multi-select dashboard variable whose values come from the warehouse, "All" by default."""

    name: str
    label: str
    sql: str

    def to_grafana(self) -> dict[str, Any]:
        return {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "datasource": DATASOURCE_REF,
            "query": self.sql,
            "refresh": 2,
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
        }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-6h"
    tags: tuple[str, ...] = field(default=("gantry",))

    def panel(self, title: str) -> Panel:
        return next(p for p in self.panels if p.title == title)

    def to_grafana(self) -> dict[str, Any]:
        """The dashboard model Grafana stores (schema as of Grafana 10/11)."""
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": "1m",
            "schemaVersion": 39,
            "templating": {"list": [v.to_grafana() for v in self.variables]},
            "annotations": {"list": []},
            "panels": list(_layout(self.panels)),
        }


def _layout(panels: Sequence[Panel]) -> Iterable[dict[str, Any]]:
    """Left to right, wrapping at Grafana's 24-column grid."""
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        yield panel.to_grafana(panel_id, x, y)
        x += panel.width
        row_height = max(row_height, panel.height)


def selected(column: str, variable: str) -> str:
    """A filter on a variable's selection that vanishes when "All" is selected."""
    return f"$__conditionalAll({column} IN (${{{variable}:singlequote}}), ${variable})"


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def values_table(structure: str, rows: Sequence[tuple[Any, ...]]) -> str:
    """A ClickHouse ``VALUES`` subquery; with no rows, an empty result of the same columns."""
    if not rows:
        names = [part.split()[0] for part in structure.split(",")]
        nulls = ", ".join(
            f"CAST(NULL, 'Nullable({t.split()[1]})') AS {n}" for n, t in zip(names, structure.split(","), strict=True)
        )
        return f"SELECT {nulls} WHERE 0"
    literals = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f"SELECT * FROM VALUES({sql_string(structure)}, {literals})"


def _literal(value: Any) -> str:
    return sql_string(value) if isinstance(value, str) else repr(float(value))


def city_timezone(config: GantryConfig) -> str:
    """Hours of the day are the city's: the first zone's tariff time zone, else UTC."""
    return config.zones[0].tariff.timezone if config.zones else "UTC"


def camera_counts(camera_filter: str) -> str:
    """Reads (and low-confidence reads) per camera per minute in the range, from the aggregate.

    ``camera_counts_1m`` holds distinct-read-id states per camera and minute; merging them per
    minute keeps each merge small and counts a read delivered twice once. Panels that do not use
    ``low_confidence`` cost nothing for it: ClickHouse drops unused subquery columns.
    """
    return (
        "(SELECT camera_id, minute, uniqExactMerge(reads) AS reads,\n"
        "  uniqExactMerge(low_confidence) AS low_confidence FROM camera_counts_1m\n"
        f"  WHERE $__timeFilter(minute) AND {camera_filter} GROUP BY camera_id, minute)"
    )


def city_traffic(config: GantryConfig) -> Dashboard:
    cameras = values_table(
        "camera_id String, name String, lat Float64, lon Float64",
        [(c.id, c.name or c.id, c.lat, c.lon) for c in config.cameras],
    )
    tz = sql_string(city_timezone(config))
    counts = camera_counts(selected("camera_id", "camera"))
    hours = ", ".join(f"sumIf(reads, hour = {h}) AS h{h:02d}" for h in range(24))
    weekday_names = "[" + ", ".join(sql_string(d) for d in WEEKDAYS) + "]"
    return Dashboard(
        uid="gantry-city-traffic",
        title="City traffic",
        description="Plate reads per camera: volume, where, when, and how sure the recognizer was.",
        variables=(
            Variable(
                "camera", "Camera", "SELECT DISTINCT camera_id FROM camera_counts_1m ORDER BY camera_id"
            ),
        ),
        panels=(
            Panel(
                "Reads per minute by camera",
                "lines",
                "SELECT $__timeInterval(minute) AS time, camera_id, sum(reads) * 60 / $__interval_s AS reads_per_min\n"
                f"FROM {counts}\nGROUP BY time, camera_id ORDER BY time, camera_id",
                ("time", "camera_id", "reads_per_min"),
                min_interval="1m",
            ),
            Panel(
                "Total reads per minute",
                "lines",
                "SELECT $__timeInterval(minute) AS time, sum(reads) * 60 / $__interval_s AS reads_per_min\n"
                f"FROM {counts}\nGROUP BY time ORDER BY time",
                ("time", "reads_per_min"),
                min_interval="1m",
            ),
            Panel(
                "Cameras by read volume",
                "map",
                "SELECT c.camera_id AS camera_id, c.name AS name, c.lat AS lat, c.lon AS lon, v.reads AS reads\n"
                f"FROM ({cameras}) AS c\n"
                f"LEFT JOIN (SELECT camera_id, sum(reads) AS reads FROM {camera_counts('1=1')}\n"
                "  GROUP BY camera_id) AS v ON v.camera_id = c.camera_id\n"
                f"WHERE {selected('c.camera_id', 'camera')}\nORDER BY reads DESC, camera_id",
                ("camera_id", "name", "lat", "lon", "reads"),
                description="Camera positions from gantry.yaml, sized by reads in the time range.",
                height=10,
            ),
            Panel(
                "Busiest cameras",
                "bars",
                f"SELECT camera_id, sum(reads) AS reads\nFROM {counts}\n"
                "GROUP BY camera_id ORDER BY reads DESC, camera_id LIMIT 10",
                ("camera_id", "reads"),
                height=10,
            ),
            Panel(
                "Share of low-confidence reads",
                "lines",
                "SELECT $__timeInterval(minute) AS time, sum(low_confidence) / sum(reads) AS low_confidence_share\n"
                f"FROM {counts}\nGROUP BY time ORDER BY time",
                ("time", "low_confidence_share"),
                description=f"Reads with confidence below {LOW_CONFIDENCE}; a rising share points at a dirty "
                "lens or bad light.",
                unit="percentunit",
                min_interval="1m",
            ),
            Panel(
                "Peak hours",
                "matrix",
                f"SELECT {weekday_names}[dow] AS weekday, {hours}\n"
                f"FROM (SELECT toDayOfWeek(toTimeZone(minute, {tz})) AS dow, toHour(toTimeZone(minute, {tz})) AS hour,\n"
                f"  sum(reads) AS reads FROM {counts} GROUP BY dow, hour)\n"
                "GROUP BY dow ORDER BY dow",
                ("weekday", *(f"h{h:02d}" for h in range(24))),
                description=f"Reads by weekday and hour of day ({city_timezone(config)}).",
                width=24,
            ),
        ),
    )


def journey_times(config: GantryConfig) -> Dashboard:
    in_segment = selected("segment_id", "segment")
    interval = f"{config.stream_jobs.stats_interval_s}s"
    # Seconds from a stats interval's start back from the end of the time range: "now" is
    # 0..3600 s, the same hour of the week in earlier weeks is 604800*k + 0..3600 s.
    ago = "dateDiff('second', interval_start, $__toTime)"
    hour_of_week = f"({ago} % 604800) BETWEEN 0 AND 3599"
    weeks_ago = f"intDiv({ago}, 604800)"
    weighted = "sumIf(median_travel_s * count, {cond}) / sumIf(count, {cond})"
    return Dashboard(
        uid="gantry-journey-times",
        title="Journey times",
        description="Travel times between camera pairs, from the segment statistics of matched journeys.",
        variables=(
            Variable(
                "segment", "Segment", "SELECT DISTINCT segment_id FROM segment_stats ORDER BY segment_id"
            ),
        ),
        panels=(
            Panel(
                "Travel time by segment (median and 85th percentile)",
                "lines",
                "SELECT $__timeInterval(interval_start) AS time, segment_id,\n"
                "  sum(median_travel_s * count) / sum(count) AS median_s,\n"
                "  sum(p85_travel_s * count) / sum(count) AS p85_s\n"
                f"FROM segment_stats FINAL\nWHERE $__timeFilter(interval_start) AND {in_segment} AND count > 0\n"
                "GROUP BY time, segment_id ORDER BY time, segment_id",
                ("time", "segment_id", "median_s", "p85_s"),
                description="Per stats interval; wider buckets weight each interval by its journeys.",
                unit="s",
                min_interval=interval,
                width=24,
            ),
            Panel(
                "Now vs typical for this time of week",
                "table",
                "SELECT segment_id,\n"
                f"  {weighted.format(cond=f'{weeks_ago} = 0')} AS current_s,\n"
                f"  {weighted.format(cond=f'{weeks_ago} > 0')} AS typical_s,\n"
                "  round(current_s / typical_s, 2) AS ratio\n"
                "FROM segment_stats FINAL\n"
                f"WHERE interval_start > $__toTime - INTERVAL {TYPICAL_WEEKS * 7 + 1} DAY AND interval_start <= $__toTime\n"
                f"  AND {hour_of_week} AND {weeks_ago} <= {TYPICAL_WEEKS} AND count > 0 AND {in_segment}\n"
                "GROUP BY segment_id ORDER BY ratio DESC, segment_id",
                ("segment_id", "current_s", "typical_s", "ratio"),
                description=f"Median travel time in the last hour of the range vs the same hour in the "
                f"previous {TYPICAL_WEEKS} weeks; ratio > 1 means slower than usual.",
            ),
            Panel(
                "Slowest segments now",
                "bars",
                "SELECT segment_id, sum(mean_speed_kmh * count) / sum(count) AS speed_kmh\n"
                "FROM segment_stats FINAL\n"
                "WHERE interval_start > $__toTime - INTERVAL 1 HOUR AND interval_start <= $__toTime\n"
                f"  AND count > 0 AND {in_segment}\n"
                "GROUP BY segment_id ORDER BY speed_kmh ASC, segment_id LIMIT 10",
                ("segment_id", "speed_kmh"),
                description="Mean speed over the last hour of the range, slowest first.",
                unit="velocitykmh",
            ),
            Panel(
                "Matched journeys per interval",
                "columns",
                "SELECT $__timeInterval(interval_start) AS time, segment_id, sum(count + outliers) AS journeys\n"
                f"FROM segment_stats FINAL\nWHERE $__timeFilter(interval_start) AND {in_segment}\n"
                "GROUP BY time, segment_id ORDER BY time, segment_id",
                ("time", "segment_id", "journeys"),
                description="Journeys matched between the segment's cameras, outliers included.",
                min_interval=interval,
                width=24,
            ),
        ),
    )


def congestion_zone(config: GantryConfig) -> Dashboard:
    entry_cameras = values_table(
        "zone_id String, camera_id String",
        [
            (zone.id, camera_id)
            for zone in config.zones
            for camera_id in zone.cameras
            if (camera := config.camera(camera_id)) is None or camera.direction != "out"
        ],
    )
    in_zone = selected("zone_id", "zone")
    currency = config.zones[0].tariff.currency if config.zones else "GBP"
    # zone_days may hold a closed day twice (at-least-once); the latest closing wins.
    days = (
        "SELECT zone_id, charge_date, argMax(charges, closed_at) AS charges,\n"
        "  toFloat64(argMax(total_amount, closed_at)) AS revenue\n"
        f"  FROM zone_days WHERE $__dateFilter(charge_date) AND {in_zone} GROUP BY zone_id, charge_date"
    )
    return Dashboard(
        uid="gantry-congestion-zone",
        title="Congestion zone",
        description="Entries, charges and revenue of the charging zones.",
        variables=(Variable("zone", "Zone", "SELECT DISTINCT zone_id FROM zone_charges ORDER BY zone_id"),),
        time_from="now-7d",
        panels=(
            Panel(
                "Zone entries per hour",
                "columns",
                "SELECT toStartOfHour(c.minute) AS time, z.zone_id AS zone_id, sum(c.reads) AS entries\n"
                f"FROM {camera_counts('1=1')} AS c\nINNER JOIN ({entry_cameras}) AS z ON z.camera_id = c.camera_id\n"
                f"WHERE {selected('z.zone_id', 'zone')}\n"
                "GROUP BY time, zone_id ORDER BY time, zone_id",
                ("time", "zone_id", "entries"),
                description="Reads at the zone's cameras (cameras facing out excluded).",
                min_interval="1h",
                width=24,
            ),
            Panel(
                "Charges per day",
                "columns",
                f"SELECT toDateTime(charge_date) AS time, zone_id, charges\nFROM ({days})\nORDER BY time, zone_id",
                ("time", "zone_id", "charges"),
                description="Closed charging days only (the billing export waits for the same close).",
                min_interval="1d",
            ),
            Panel(
                "Revenue per day",
                "columns",
                f"SELECT toDateTime(charge_date) AS time, zone_id, revenue\nFROM ({days})\nORDER BY time, zone_id",
                ("time", "zone_id", "revenue"),
                unit=f"currency{currency}",
                min_interval="1d",
            ),
            Panel(
                "Exempt and discounted shares",
                "pie",
                "SELECT status, count() AS charges\nFROM zone_charges FINAL\n"
                f"WHERE $__dateFilter(charge_date) AND {in_zone}\nGROUP BY status ORDER BY status",
                ("status", "charges"),
            ),
            Panel(
                "Top entry cameras",
                "bars",
                "SELECT first_camera_id AS camera_id, count() AS entries\nFROM zone_charges FINAL\n"
                f"WHERE $__dateFilter(charge_date) AND {in_zone}\n"
                "GROUP BY camera_id ORDER BY entries DESC, camera_id LIMIT 10",
                ("camera_id", "entries"),
                description="The camera that saw each charged vehicle first that day.",
            ),
        ),
    )


def hotlist(config: GantryConfig) -> Dashboard:
    hit_filter = f"$__timeFilter(ts) AND {selected('list', 'list')} AND {selected('camera_id', 'camera')}"
    return Dashboard(
        uid="gantry-hotlist",
        title="Hotlist",
        description="Reads of wanted plates and the delivery of their alerts.",
        variables=(
            Variable("list", "List", "SELECT DISTINCT list FROM hotlist_hits ORDER BY list"),
            Variable("camera", "Camera", "SELECT DISTINCT camera_id FROM hotlist_hits ORDER BY camera_id"),
        ),
        time_from="now-24h",
        panels=(
            Panel(
                "Hits by list",
                "columns",
                "SELECT $__timeInterval(ts) AS time, list, uniqExact(hit_id) AS hits\n"
                f"FROM hotlist_hits\nWHERE {hit_filter}\nGROUP BY time, list ORDER BY time, list",
                ("time", "list", "hits"),
                min_interval="1m",
            ),
            Panel(
                "Webhook delivery failures",
                "columns",
                "SELECT $__timeInterval(ts) AS time, count() AS failures\n"
                "FROM webhook_failures FINAL\nWHERE $__timeFilter(ts)\nGROUP BY time ORDER BY time",
                ("time", "failures"),
                description="Alerts that exhausted their retries and went to the webhook dead-letter topic.",
                min_interval="1m",
            ),
            Panel(
                "Recent hits",
                "table",
                "SELECT ts AS time, plate, list, camera_id AS camera, match, priority, confidence\n"
                f"FROM hotlist_hits\nWHERE {hit_filter}\nORDER BY ts DESC, hit_id LIMIT 1 BY hit_id LIMIT 100",
                ("time", "plate", "list", "camera", "match", "priority", "confidence"),
                width=24,
                height=10,
            ),
        ),
    )


def all_dashboards(config: GantryConfig) -> list[Dashboard]:
    from warehouse.grafana.parking import car_parks  # it builds on this module's parts

    return [city_traffic(config), journey_times(config), congestion_zone(config), hotlist(config), car_parks(config)]
