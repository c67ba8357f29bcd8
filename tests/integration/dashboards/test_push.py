"""``gantry dashboards push`` against a local server answering as Grafana's HTTP API documents."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from grafana_client import GrafanaApi
from typer.testing import CliRunner

from gantry.cli import app as gantry_app
from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.push import datasource_model, push

pytestmark = pytest.mark.integration
TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    """Folders, data sources and dashboards by uid; every request is recorded."""

    folders: dict[str, dict] = field(default_factory=dict)
    datasources: dict[str, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, str | None]] = field(default_factory=list)
    require_token: str | None = TOKEN

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "folders"]:
            if method == "GET":
                folder = self.folders.get(parts[2])
                return (200, folder) if folder else (404, {"message": "folder not found"})
            folder = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"], "version": 1}
            self.folders[body["uid"]] = folder
            return 200, folder
        if parts[:2] == ["api", "datasources"]:
            if method == "GET":
                ds = self.datasources.get(parts[3])
                return (200, ds) if ds else (404, {"message": "Data source not found"})
            stored = {k: v for k, v in body.items() if k != "secureJsonData"}
            stored.setdefault("id", len(self.datasources) + 1)
            self.datasources[body["uid"]] = stored
            message = "Datasource added" if method == "POST" else "Datasource updated"
            return 200, {"datasource": stored, "id": stored["id"], "message": message, "name": stored["name"]}
        if parts[:3] == ["api", "dashboards", "uid"]:
            found = self.dashboards.get(parts[3])
            return (200, found) if found else (404, {"message": "Dashboard not found"})
        if parts[:3] == ["api", "dashboards", "db"]:
            model = body["dashboard"]
            version = self.dashboards.get(model["uid"], {}).get("dashboard", {}).get("version", 0) + 1
            stored = {**model, "id": 100 + len(self.dashboards), "version": version}
            self.dashboards[model["uid"]] = {
                "dashboard": stored,
                "meta": {"folderUid": body.get("folderUid")},
            }
            return 200, {
                "id": stored["id"],
                "uid": model["uid"],
                "url": f"/d/{model['uid']}",
                "status": "success",
                "version": version,
                "slug": model["uid"],
            }
        return 404, {"message": "Not found"}


@pytest.fixture()
def grafana():
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization")
            fake.requests.append((self.command, self.path, body, auth))
            if fake.require_token and auth != f"Bearer {fake.require_token}":
                status, payload = 401, {"message": "invalid API key"}
            else:
                status, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


def writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _, _ in fake.requests if m != "GET"]


def test_first_push_creates_everything_and_a_second_changes_nothing(grafana, config):
    api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
    dashboards = all_dashboards(config)
    datasource = datasource_model("http://127.0.0.1:8123", "gantry")

    first = push(api, dashboards, datasource)
    assert (first.folder, first.datasource) == ("created", "created")
    assert first.dashboards == {d.uid: "created" for d in dashboards}
    assert (
        writes(grafana)
        == [("POST", "/api/folders"), ("POST", "/api/datasources")] + [("POST", "/api/dashboards/db")] * len(dashboards)
    )
    posted = [body for m, p, body, _ in grafana.requests if p == "/api/dashboards/db"]
    assert all(b["overwrite"] and b["folderUid"] == "gantry" for b in posted)
    assert [b["dashboard"]["uid"] for b in posted] == [d.uid for d in dashboards]
    assert grafana.datasources["gantry-clickhouse"]["jsonData"]["host"] == "127.0.0.1"
    assert {auth for *_, auth in grafana.requests} == {f"Bearer {TOKEN}"}

    grafana.requests.clear()
    again = push(api, dashboards, datasource)
    assert (again.folder, again.datasource) == ("unchanged", "unchanged")
    assert set(again.dashboards.values()) == {"unchanged"}
    assert writes(grafana) == []


def test_push_overwrites_a_dashboard_edited_in_grafana_and_moves_the_datasource(grafana, config):
    api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
    dashboards = all_dashboards(config)
    push(api, dashboards, datasource_model("http://127.0.0.1:8123", "gantry"))
    grafana.dashboards["gantry-hotlist"]["dashboard"]["title"] = "edited by hand"
    grafana.requests.clear()

    report = push(api, dashboards, datasource_model("http://warehouse:8123", "gantry"))
    assert report.datasource == "updated"
    assert report.dashboards["gantry-hotlist"] == "updated"
    assert [s for uid, s in report.dashboards.items() if uid != "gantry-hotlist"] == ["unchanged"] * (len(dashboards) - 1)
    assert grafana.dashboards["gantry-hotlist"]["dashboard"]["title"] == "Hotlist"
    assert grafana.dashboards["gantry-hotlist"]["dashboard"]["version"] == 2
    assert ("PUT", "/api/datasources/uid/gantry-clickhouse") in writes(grafana)


def test_cli_push_reports_changes_and_reads_the_token_from_the_environment(grafana, tmp_path, config):
    config_file = tmp_path / "gantry.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    runner = CliRunner()
    args = [
        "--config",
        str(config_file),
        "dashboards",
        "push",
        "--grafana-url",
        grafana.url,
        "--clickhouse-url",
        "http://ch:8123",
    ]
    result = runner.invoke(
        gantry_app, args, env={"GANTRY_GRAFANA_TOKEN": TOKEN, "GANTRY_CONFIG": str(config_file)}
    )
    assert result.exit_code == 0, result.output
    assert "dashboard gantry-city-traffic: created" in result.output
    assert "data source gantry-clickhouse: created" in result.output

    denied = runner.invoke(
        gantry_app, args, env={"GANTRY_GRAFANA_TOKEN": "wrong", "GANTRY_CONFIG": str(config_file)}
    )
    assert denied.exit_code == 2
    assert "push to Grafana at" in denied.output and "Unauthorized" in denied.output


def test_cli_export_writes_one_json_per_dashboard(tmp_path):
    result = CliRunner().invoke(
        gantry_app, ["dashboards", "export", str(tmp_path / "out")], env={"GANTRY_CONFIG": ""}
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").glob("*.json"))
    assert files == [
        "gantry-car-parks.json",
        "gantry-city-traffic.json",
        "gantry-congestion-zone.json",
        "gantry-hotlist.json",
        "gantry-journey-times.json",
    ]
    assert json.loads((tmp_path / "out" / "gantry-hotlist.json").read_text())["uid"] == "gantry-hotlist"
