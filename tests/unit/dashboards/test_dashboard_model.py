"""The generated dashboards conform to Grafana's dashboard model and hang together."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import panelcfg_config
from grafana_foundation_sdk.models.dashboard import Dashboard as SdkDashboard

from gantry.config import GantryConfig, load_config
from gantry.errors import ConfigError
from warehouse.grafana.dashboards import FOLDER_UID, all_dashboards, values_table
from warehouse.grafana.macros import TimeRange, expand
from warehouse.grafana.push import datasource_model, export

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "grafana"
EXAMPLE = load_config(ROOT / "examples" / "gantry.yaml")
DASHBOARDS = all_dashboards(EXAMPLE)
MODELS = [d.to_grafana() for d in DASHBOARDS]
register_default_plugins()


def differences(mine: Any, model: Any, path: str = "$") -> Iterator[str]:
    """Where our JSON says something Grafana's model does not keep (unknown key, other type)."""
    if isinstance(mine, dict):
        if not isinstance(model, dict):
            yield f"{path}: an object where the model has {type(model).__name__}"
            return
        for key, value in mine.items():
            if key not in model:
                yield f"{path}.{key}: unknown to Grafana's dashboard model"
            else:
                yield from differences(value, model[key], f"{path}.{key}")
    elif isinstance(mine, list):
        if not isinstance(model, list) or len(model) != len(mine):
            yield f"{path}: list changed in the model"
            return
        for i, (a, b) in enumerate(zip(mine, model, strict=True)):
            yield from differences(a, b, f"{path}[{i}]")
    elif mine != model:
        yield f"{path}: {mine!r} became {model!r}"


@pytest.mark.parametrize("model", MODELS, ids=[m["uid"] for m in MODELS])
def test_dashboard_survives_grafana_foundation_sdk_model(model):
    parsed = json.loads(json.dumps(SdkDashboard.from_json(model), cls=JSONEncoder))
    assert list(differences(model, parsed)) == []


def test_the_model_check_catches_a_misspelt_option():
    broken = json.loads(json.dumps(MODELS[0]))
    broken["panels"][0]["options"]["legend"]["placment"] = "bottom"
    parsed = json.loads(json.dumps(SdkDashboard.from_json(broken), cls=JSONEncoder))
    assert any("placment" in d for d in differences(broken, parsed))


def test_five_dashboards_with_unique_uids_and_known_panel_types():
    assert [m["title"] for m in MODELS] == ["City traffic", "Journey times", "Congestion zone", "Hotlist", "Car parks"]
    assert len({m["uid"] for m in MODELS}) == 5
    for model in MODELS:
        for panel in model["panels"]:
            assert panelcfg_config(panel["type"]) is not None, panel["type"]


@pytest.mark.parametrize("model", MODELS, ids=[m["uid"] for m in MODELS])
def test_panels_fit_the_grid_without_overlapping(model):
    cells: set[tuple[int, int]] = set()
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def provisioned_datasources() -> dict[str, str]:
    found = {}
    for path in (DEPLOY / "provisioning" / "datasources").glob("*.yaml"):
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            found[ds["uid"]] = ds["type"]
    return found


def datasource_refs(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def test_every_datasource_reference_resolves_to_the_provisioned_clickhouse():
    provisioned = provisioned_datasources()
    assert provisioned == {"gantry-clickhouse": "grafana-clickhouse-datasource"}
    refs = [ref for model in MODELS for ref in datasource_refs(model)]
    assert len(refs) > 2 * sum(len(m["panels"]) for m in MODELS) - 1  # panels, targets, variables
    for ref in refs:
        assert provisioned.get(ref["uid"]) == ref["type"]
    assert datasource_model("http://u:p@ch:8123", "gantry")["uid"] in provisioned


def test_the_dashboard_provider_loads_into_the_gantry_folder():
    provider = yaml.safe_load((DEPLOY / "provisioning" / "dashboards" / "gantry.yaml").read_text())[
        "providers"
    ][0]
    assert provider["folderUid"] == FOLDER_UID and provider["type"] == "file"


@pytest.mark.parametrize("model", MODELS, ids=[m["uid"] for m in MODELS])
def test_sql_uses_only_declared_variables_and_expands_completely(model):
    declared = {v["name"] for v in model["templating"]["list"]}
    used: set[str] = set()
    window = TimeRange(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 21, 6, tzinfo=UTC))
    for panel in model["panels"]:
        sql = panel["targets"][0]["rawSql"]
        used |= set(re.findall(r"\$\{?([a-z]\w*)", sql))
        expanded = expand(sql, window, {name: ["x"] for name in declared})
        assert "$" not in expanded, panel["title"]
    assert used <= declared, f"undeclared variables {used - declared}"
    assert declared <= used, f"variables no panel uses: {declared - used}"


def test_charts_served_by_an_aggregate_never_scan_raw_reads():
    readers = [(d.uid, p.title) for d in DASHBOARDS for p in d.panels if "plate_reads" in p.sql]
    assert readers == []
    read_counts = {"reads", "reads_per_min", "entries", "low_confidence_share"}
    counts = [p for d in DASHBOARDS for p in d.panels if read_counts & set(p.columns)]
    assert {"Total reads per minute", "Share of low-confidence reads"} <= {p.title for p in counts}
    assert all("camera_counts_1m" in p.sql or "zone_charges" in p.sql for p in counts)


def test_camera_positions_come_from_config_and_are_quoted_safely():
    geomap = next(p for p in MODELS[0]["panels"] if p["type"] == "geomap")
    sql = geomap["targets"][0]["rawSql"]
    for camera in EXAMPLE.cameras:
        assert f"'{camera.id}'" in sql and repr(camera.lat) in sql
    assert "King\\'s Cross" in sql
    assert values_table("a String", []) == "SELECT CAST(NULL, 'Nullable(String)') AS a WHERE 0"


def test_time_series_and_tables_ask_the_plugin_for_the_right_format():
    for model in MODELS:
        for panel in model["panels"]:
            target = panel["targets"][0]
            if panel["type"] == "timeseries":
                assert (target["queryType"], target["format"]) == ("timeSeries", 0)
            else:
                assert (target["queryType"], target["format"]) == ("table", 1)
            assert target["editorType"] == "sql"


def test_deploy_json_is_the_export_of_the_example_config(tmp_path):
    export(DASHBOARDS, tmp_path)
    committed = sorted(p.name for p in (DEPLOY / "dashboards").glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json"))
    for name in committed:
        assert (DEPLOY / "dashboards" / name).read_text() == (tmp_path / name).read_text(), (
            f"{name} is stale: run `gantry --config examples/gantry.yaml dashboards export deploy/grafana/dashboards`"
        )


def test_datasource_from_the_warehouse_url():
    model = datasource_model("https://reader:s3cret@ch.example.org:8443/city", "gantry")
    assert model["jsonData"] == {
        "host": "ch.example.org",
        "port": 8443,
        "protocol": "http",
        "secure": True,
        "username": "reader",
        "defaultDatabase": "city",
    }
    assert model["secureJsonData"] == {"password": "s3cret"}
    assert "secureJsonData" not in datasource_model("http://127.0.0.1:8123", "gantry")
    with pytest.raises(ConfigError, match="Grafana needs a ClickHouse HTTP URL"):
        datasource_model("chdb:///tmp/wh", "gantry")


def test_dashboards_generate_without_cameras_or_zones():
    models = [d.to_grafana() for d in all_dashboards(GantryConfig())]
    assert [m["uid"] for m in models] == [m["uid"] for m in MODELS]
