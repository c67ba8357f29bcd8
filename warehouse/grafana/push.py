"""Put the dashboards into a running Grafana through its HTTP API (grafana-client).

``push`` is safe to repeat: the folder and the data source are created only when missing (the
data source is updated when its connection settings differ), and each dashboard is written by
uid with ``overwrite`` only when its content changed, so the report says what really changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from gantry.errors import ConfigError
from warehouse.client import parse_dsn
from warehouse.grafana.dashboards import FOLDER_TITLE, FOLDER_UID, Dashboard
from warehouse.grafana.panels import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID

Change = Literal["created", "updated", "unchanged"]
# Keys Grafana adds or bumps on save; they do not make a dashboard different.
_VOLATILE = ("id", "version")


@dataclass
class PushReport:
    folder: Change = "unchanged"
    datasource: Change = "unchanged"
    dashboards: dict[str, Change] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"folder {FOLDER_UID}: {self.folder}",
            f"data source {DATASOURCE_UID}: {self.datasource}",
            *(f"dashboard {uid}: {change}" for uid, change in self.dashboards.items()),
        ]


def datasource_model(clickhouse_url: str, database: str) -> dict[str, Any]:
    """The ClickHouse plugin's data source over HTTP, as Grafana's API and provisioning take it.

    Grafana must reach ClickHouse itself, so the URL is the one Grafana sees (the in-process
    ``chdb://`` warehouse cannot be one).
    """
    target = parse_dsn(clickhouse_url)
    if target.in_process:
        raise ConfigError(
            f"{clickhouse_url!r}: Grafana needs a ClickHouse HTTP URL (http(s)://host:port); "
            "serve the embedded warehouse with `gantry up` or pass --clickhouse-url"
        )
    model: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "jsonData": {
            "host": target.host,
            "port": target.port,
            "protocol": "http",
            "secure": target.scheme == "https",
            "username": target.username,
            "defaultDatabase": target.database or database,
        },
    }
    if target.password:
        model["secureJsonData"] = {"password": target.password}
    return model


def push(api: GrafanaApi, dashboards: list[Dashboard], datasource: dict[str, Any]) -> PushReport:
    report = PushReport()
    report.folder = _ensure_folder(api)
    report.datasource = _ensure_datasource(api, datasource)
    for dashboard in dashboards:
        report.dashboards[dashboard.uid] = _upsert_dashboard(api, dashboard.to_grafana())
    return report


def export(dashboards: list[Dashboard], directory: Path) -> list[Path]:
    """One ``<uid>.json`` per dashboard, the files Grafana's file provisioning reads."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in dashboards:
        path = directory / f"{dashboard.uid}.json"
        path.write_text(json.dumps(dashboard.to_grafana(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _ensure_folder(api: GrafanaApi) -> Change:
    if _get(api.folder.get_folder, FOLDER_UID) is not None:
        return "unchanged"
    api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
    return "created"


def _ensure_datasource(api: GrafanaApi, wanted: dict[str, Any]) -> Change:
    current = _get(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if current is None:
        api.datasource.create_datasource(wanted)
        return "created"
    same = all(current.get(k) == wanted[k] for k in ("name", "type", "jsonData"))
    if same and "secureJsonData" not in wanted:
        return "unchanged"
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, {**current, **wanted})
    return "updated"


def _upsert_dashboard(api: GrafanaApi, model: dict[str, Any]) -> Change:
    current = _get(api.dashboard.get_dashboard, model["uid"])
    if current is not None:
        stored = {k: v for k, v in current.get("dashboard", {}).items() if k not in _VOLATILE}
        in_folder = current.get("meta", {}).get("folderUid") == FOLDER_UID
        if stored == model and in_folder:
            return "unchanged"
    api.dashboard.update_dashboard(
        {"dashboard": model, "folderUid": FOLDER_UID, "overwrite": True, "message": "gantry dashboards push"}
    )
    return "created" if current is None else "updated"


def _get(call: Any, uid: str) -> dict[str, Any] | None:
    """The object, or None where Grafana answers 404 Not Found."""
    try:
        return call(uid)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
