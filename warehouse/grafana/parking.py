"""The fifth dashboard: car parks (issue 16), from ``parking_sessions`` and ``gate_decisions``.

Stays are read with ``FINAL`` (the latest version of each, withdrawn ones left out) and
decisions by distinct ``decision_id``, so a row the sink delivered twice counts once. Capacities
are not in the warehouse: they come from the sites in ``gantry.yaml``, written into the SQL when
the dashboards are generated, like the cameras of the other dashboards.
"""

from __future__ import annotations

from gantry.config import GantryConfig
from warehouse.grafana.dashboards import Dashboard, Variable, city_timezone, selected, sql_string, values_table
from warehouse.grafana.panels import Panel

DWELL_BANDS = ((900, "0-15 min"), (3600, "15-60 min"), (3 * 3600, "1-3 h"), (8 * 3600, "3-8 h"), (86_400, "8-24 h"))
"""Upper bounds in seconds of the dwell-time histogram's bars; the last bar is "over 24 h"."""
PASSED = "decision = 'allow'"  # the barrier opened (an exit told to pay opens once paid)
STAYS = "parking_sessions FINAL"


def dwell_band() -> str:
    cases = ", ".join(f"duration_s < {limit}, {sql_string(label)}" for limit, label in DWELL_BANDS)
    return f"multiIf({cases}, 'over 24 h')"


def car_parks(config: GantryConfig) -> Dashboard:
    parks = [park for site in config.sites for park in site.car_parks]
    capacities = values_table("car_park_id String, capacity UInt32", [(p.id, p.capacity) for p in parks])
    timezone = parks[0].timezone if parks else city_timezone(config)
    currency = parks[0].tariff.currency if parks else "GBP"
    in_park = selected("car_park_id", "car_park")
    ended = "coalesce(exit_ts, entry_ts)"  # when a stay's fee fell due (its entry, when the exit was missed)
    return Dashboard(
        uid="gantry-car-parks",
        title="Car parks",
        description="Occupancy, entries and exits, stays and revenue of the car parks, and refused attempts.",
        variables=(Variable("car_park", "Car park", "SELECT DISTINCT car_park_id FROM parking_sessions ORDER BY 1"),),
        time_from="now-7d",
        panels=(
            Panel(
                "Occupancy now",
                "bars",
                "SELECT c.car_park_id AS car_park, countIf(s.session_id != '') AS occupied, any(c.capacity) AS capacity\n"
                f"FROM ({capacities}) AS c\nLEFT JOIN (SELECT car_park_id, session_id FROM {STAYS}\n"
                "  WHERE status = 'open' AND NOT withdrawn) AS s ON s.car_park_id = c.car_park_id\n"
                f"WHERE {selected('c.car_park_id', 'car_park')}\nGROUP BY car_park ORDER BY car_park",
                ("car_park", "occupied", "capacity"),
                description="Open stays (an entry without its exit yet) against each car park's capacity.",
            ),
            Panel(
                "Occupancy over time",
                "lines",
                "SELECT toDateTime(t) AS time, car_park_id AS car_park,\n"
                "  countIf(entry_ts <= toDateTime(t) AND toDateTime(t) < stay_end) AS occupied\n"
                "FROM (SELECT car_park_id, entry_ts, if(status = 'open', now64(3), coalesce(exit_ts, entry_ts)) AS stay_end\n"
                f"  FROM {STAYS} WHERE NOT withdrawn AND entry_ts IS NOT NULL AND {in_park}\n"
                "  AND entry_ts <= $__toTime AND stay_end >= $__fromTime)\n"
                "ARRAY JOIN range(toUInt32($__fromTime), toUInt32($__toTime), $__interval_s) AS t\n"
                "GROUP BY time, car_park ORDER BY time, car_park",
                ("time", "car_park", "occupied"),
                description="Cars inside at each instant: entered before it and not yet left (a stay whose "
                            "exit was missed is left out).",
                min_interval="5m",
            ),
            Panel(
                "Entries and exits per hour",
                "columns",
                "SELECT toStartOfHour(ts) AS time, direction, uniqExact(decision_id) AS passages\n"
                f"FROM gate_decisions\nWHERE $__timeFilter(ts) AND car_park_id IS NOT NULL AND {PASSED} AND {in_park}\n"
                "GROUP BY time, direction ORDER BY time, direction",
                ("time", "direction", "passages"),
                description="Cars let through the car parks' gates (an exit told to pay counts once let out).",
                min_interval="1h",
            ),
            Panel(
                "Dwell time",
                "bars",
                f"SELECT {dwell_band()} AS dwell, count() AS stays\nFROM {STAYS}\n"
                f"WHERE status = 'closed' AND NOT withdrawn AND $__timeFilter(exit_ts) AND {in_park}\n"
                "GROUP BY dwell ORDER BY min(duration_s)",
                ("dwell", "stays"),
                description="Stays that ended in the range, by how long they lasted.",
            ),
            Panel(
                "Revenue per day",
                "columns",
                f"SELECT toDateTime(toDate({ended}, {sql_string(timezone)})) AS time, car_park_id AS car_park,\n"
                f"  toFloat64(sum(fee)) AS revenue\nFROM {STAYS}\n"
                f"WHERE NOT withdrawn AND status != 'open' AND $__timeFilter({ended}) AND {in_park}\n"
                "GROUP BY time, car_park ORDER BY time, car_park",
                ("time", "car_park", "revenue"),
                description=f"Fees of the stays that ended each day ({timezone}), as `gantry export parking` "
                            "counts them.",
                unit=f"currency{currency}",
                min_interval="1d",
            ),
            Panel(
                "Denied attempts",
                "columns",
                "SELECT $__timeInterval(ts) AS time, reason, uniqExact(decision_id) AS attempts\n"
                f"FROM gate_decisions\nWHERE $__timeFilter(ts) AND decision = 'deny' AND {in_park}\n"
                "GROUP BY time, reason ORDER BY time, reason",
                ("time", "reason", "attempts"),
                description="Barriers that stayed shut, by why (deny list, outside hours, unknown, full...).",
                min_interval="1h",
            ),
            Panel(
                "Recent denied attempts",
                "table",
                "SELECT ts AS time, plate, site_id AS site, camera_id AS camera, reason, `list`\n"
                f"FROM gate_decisions\nWHERE $__timeFilter(ts) AND decision = 'deny' AND {in_park}\n"
                "ORDER BY ts DESC, decision_id LIMIT 1 BY decision_id LIMIT 100",
                ("time", "plate", "site", "camera", "reason", "list"),
                width=24,
                height=10,
            ),
        ),
    )
