"""The pods get what the app reads: config keys, CLI commands, health endpoints and secrets.

Every name checked here comes from the app itself (GantryConfig, the `gantry` click group,
gantry.observability, the Grafana panels), so a rename on either side fails a test.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import typer
import yaml
from chart_release import REPO, Release, container_environment, expand, load_values, render
from pydantic import BaseModel

from gantry.config import GantryConfig, load_config
from gantry.observability import serve_health
from ingest.server import spool_dir
from ingest.snapshots import store_url
from warehouse.client import parse_dsn

# Gantry env vars that are not config keys, with where the app reads them.
PROCESS_ENV = {
    "GANTRY_CONFIG",  # gantry.config.config_path
    "GANTRY_HEALTH_PORT",  # every long-running command's --health-port
    "GANTRY_HEALTH_HOST",  # gantry.observability.serve_health
}


def config_key_exists(env_name: str) -> bool:
    """Whether GANTRY_<SECTION>__<KEY> names a field, the way pydantic-settings resolves it."""
    model: type[BaseModel] = GantryConfig
    parts = env_name.removeprefix("GANTRY_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if depth < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def secret_env_names(config: GantryConfig) -> set[str]:
    """Env vars the app reads secrets from, as the configuration names them."""
    named = {config.privacy.pseudonym_key_env, config.ingest.tokens_env, config.api.tokens_env}
    return named | {s.secret_env for s in config.hotlist.subscribers if s.secret_env}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No GANTRY_* from the developer's shell leaks into what a pod would see."""
    for name in [n for n in os.environ if n.startswith("GANTRY_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def config_file(release: Release, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    """The rendered gantry.yaml, loaded in a clean environment."""
    path = tmp_path / "gantry.yaml"
    path.write_text(release.get("ConfigMap", "gantry")["data"]["gantry.yaml"])
    return path


def test_config_map_is_a_valid_gantry_yaml(release: Release, config_file: Path) -> None:
    config = load_config(config_file)
    values = release.values["config"]
    assert str(config.data_dir) == values["data_dir"]
    assert config.stream_jobs.workers == values["stream_jobs"]["workers"]
    assert config.recognize.backend == values["recognize"]["backend"]
    assert len(config.cameras) == len(values["cameras"])


def test_gantry_env_vars_are_config_keys_or_known_secrets(release: Release, config_file: Path) -> None:
    config = load_config(config_file)
    allowed = PROCESS_ENV | secret_env_names(config)
    for owner, container in release.containers():
        for var in container.get("env", []):
            name = var["name"]
            if name.startswith("GANTRY_"):
                assert name in allowed or config_key_exists(name), f"{owner}: {name} is read by nothing"


def test_each_process_loads_its_config_with_the_pod_environment(release: Release, config_file: Path) -> None:
    values = release.values
    ray = values["recognize"]["ray"]
    from_file = load_config(config_file)
    for owner, container in release.gantry_containers():
        pod_env = container_environment(release, container)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert pod_env["GANTRY_CONFIG"] == f"{mounts['config']}/gantry.yaml", owner
        with pytest.MonkeyPatch.context() as env:
            for name, value in {**pod_env, "GANTRY_CONFIG": str(config_file)}.items():
                env.setenv(name, value)
            config = load_config()
            endpoints_only = {
                "broker": from_file.broker.model_copy(
                    update={"bootstrap_servers": config.broker.bootstrap_servers}
                ),
                "warehouse": from_file.warehouse.model_copy(update={"dsn": config.warehouse.dsn}),
                "ray": from_file.ray.model_copy(update={"address": config.ray.address}),
            }
            assert config == from_file.model_copy(update=endpoints_only), (
                f"{owner}: env changed more than endpoints"
            )
            assert config.broker.bootstrap_servers == values["kafka"]["bootstrapServers"], owner
            house = values["clickhouse"]
            dsn = parse_dsn(config.warehouse.dsn or "")
            assert (dsn.scheme, dsn.host, dsn.port, dsn.database) == (
                house["scheme"],
                house["host"],
                house["port"],
                config.warehouse.database,
            ), owner
            assert (dsn.username, dsn.password) == (
                pod_env["CLICKHOUSE_USER"],
                pod_env["CLICKHOUSE_PASSWORD"],
            ), owner
            component = container["name"]
            if component == "recognizer" and ray["enabled"]:
                assert config.ray.address == f"ray://gantry-ray-head-svc:{ray['clientPort']}"
            else:
                assert config.ray.address is None, owner
            if component in ("jobs", "sink", "api"):
                assert config.privacy.pseudonym_key().get_secret_value(), owner
            if component == "api":
                assert pod_env[config.api.tokens_env], owner
            if component == "jobs":
                for subscriber in config.hotlist.subscribers:
                    assert subscriber.secret().get_secret_value(), f"{owner}: {subscriber.id}"


def test_recognizer_reaches_the_ray_head_service(release: Release) -> None:
    for cluster in release.of_kind("RayCluster"):
        head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        client_port = next(p["containerPort"] for p in head["ports"] if p["name"] == "client")
        recognizer = release.get("Deployment", "gantry-recognizer")["spec"]["template"]["spec"]["containers"][
            0
        ]
        address = next(v["value"] for v in recognizer["env"] if v["name"] == "GANTRY_RAY__ADDRESS")
        # KubeRay names the head Service <cluster>-head-svc.
        assert address == f"ray://{cluster['metadata']['name']}-head-svc:{client_port}"


@pytest.fixture(scope="module")
def gantry_cli() -> Any:
    """The `gantry` command as click sees it (typer ships its own copy of click: duck-typed here)."""
    from gantry.cli import app

    return typer.main.get_command(app)


def test_container_commands_exist_in_the_cli(release: Release, gantry_cli: Any) -> None:
    for owner, container in release.gantry_containers():
        group, name, *options = container["args"]
        sub = gantry_cli.commands.get(group)
        assert hasattr(sub, "commands"), f"{owner}: no `gantry {group}` command group"
        command = sub.commands.get(name)
        assert command is not None, f"{owner}: no `gantry {group} {name}` command"
        args = [expand(option, container_environment(release, container)) for option in options]
        command.make_context(f"gantry {group} {name}", args)  # unknown options or bad values raise
        if "livenessProbe" in container:
            health = next((p for p in command.params if p.name == "health_port"), None)
            assert health is not None, f"gantry {group} {name} takes no --health-port"
            envvars = [health.envvar] if isinstance(health.envvar, str) else list(health.envvar or ())
            assert "GANTRY_HEALTH_PORT" in envvars, f"gantry {group} {name} ignores $GANTRY_HEALTH_PORT"


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    server = serve_health(0, host="127.0.0.1")
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_probes_hit_endpoints_the_app_serves(release: Release, health_server: int) -> None:
    for owner, container in release.gantry_containers():
        probes = [container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in container]
        if not probes:
            continue
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = container_environment(release, container)
        for probe in probes:
            get = probe["httpGet"]
            assert ports[get["port"]] == int(env["GANTRY_HEALTH_PORT"]) == release.values["healthPort"], owner
            assert env["GANTRY_HEALTH_HOST"] == "0.0.0.0", f"{owner}: the kubelet probes the pod's address, not loopback"
            with urllib.request.urlopen(
                f"http://127.0.0.1:{health_server}{get['path']}", timeout=5
            ) as answer:
                assert answer.status == 200, f"{owner}: {get['path']}"
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz", (
            "readiness must ask whether it can work"
        )


def test_prometheus_scrapes_the_health_port(release: Release) -> None:
    for owner, template in release.pod_templates():
        annotations = template["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            assert annotations["prometheus.io/port"] == str(release.values["healthPort"]), owner
            assert annotations["prometheus.io/path"] == "/metrics", owner


def test_ingest_serves_on_the_configured_port(release: Release, config_file: Path) -> None:
    config = load_config(config_file)
    (container,) = release.get("StatefulSet", "gantry-ingest")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == config.ingest.http_port
    (service_port,) = release.get("Service", "gantry-ingest")["spec"]["ports"]
    assert service_port["targetPort"] == "http"


def test_api_serves_on_the_configured_port_on_every_interface(release: Release, config_file: Path,
                                                                gantry_cli: Any) -> None:
    """`gantry api serve` binds config.api.host (loopback by default): in a pod it must listen on
    every interface for its Service, which the chart asks for with --host, not a changed config."""
    config = load_config(config_file)
    (container,) = release.get("Deployment", "gantry-api")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["api"] == config.api.port
    assert container["args"] == ["api", "serve", "--host", "0.0.0.0"]
    serve = gantry_cli.commands["api"].commands["serve"]
    assert "--host" in {opt for param in serve.params for opt in param.opts}
    (service_port,) = release.get("Service", "gantry-api")["spec"]["ports"]
    assert service_port["targetPort"] == "api"


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes storage quantity with a binary suffix (what the values files use), in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)


def test_ingest_spool_is_a_persistent_volume_where_the_app_spools(
    release: Release, config_file: Path
) -> None:
    """The spool path and snapshot store come from the app's own resolution of the config."""
    config = load_config(config_file)
    spec = release.get("StatefulSet", "gantry-ingest")["spec"]
    claims = {c["metadata"]["name"]: c for c in spec["volumeClaimTemplates"]}
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(mounts["spool"]) == spool_dir(config)
    assert "spool" in claims
    room = quantity_bytes(claims["spool"]["spec"]["resources"]["requests"]["storage"])
    assert room >= config.ingest.spool_max_bytes, "the volume must hold a full spool"
    url = store_url(config)
    if url.startswith("file://"):
        assert "snapshots" in claims
        assert Path(mounts["snapshots"]) == Path(url.removeprefix("file://"))
    else:
        assert "snapshots" not in claims and "snapshots" not in mounts


def test_referenced_secrets_exist_or_are_declared_external(release: Release) -> None:
    external = {s["existingSecret"] for s in release.values["secrets"].values() if s["existingSecret"]}
    references: list[tuple[str, str, str | None]] = [
        (owner, ref["name"], ref["key"])
        for owner, container in release.containers()
        for var in container.get("env", [])
        if (ref := var.get("valueFrom", {}).get("secretKeyRef"))
    ]
    for datasource in release.of_kind("ConfigMap"):
        if name := datasource["metadata"].get("annotations", {}).get("gantry/credentials-secret"):
            references.append((datasource["metadata"]["name"], name, None))
    for owner, name, key in references:
        data = release.secret_data(name)
        if data is None:
            assert name in external, f"{owner}: Secret {name} is neither rendered nor declared external"
        elif key is not None:
            assert key in data, f"{owner}: Secret {name} has no key {key}"
    referenced = {name for _, name, _ in references}
    for secret in release.of_kind("Secret"):
        assert secret["metadata"]["name"] in referenced, (
            f"Secret {secret['metadata']['name']} is used by nothing"
        )


def test_datasource_is_the_one_the_dashboards_use(release: Release) -> None:
    from warehouse.grafana.panels import DATASOURCE_TYPE, DATASOURCE_UID

    config_map = release.get("ConfigMap", "gantry-datasource")
    assert config_map["metadata"]["labels"]["grafana_datasource"] == "1"
    (provisioning,) = config_map["data"].values()
    (datasource,) = yaml.safe_load(provisioning)["datasources"]
    assert (datasource["uid"], datasource["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    provisioning_file = (
        REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "gantry-clickhouse.yaml"
    )
    (for_files,) = yaml.safe_load(provisioning_file.read_text())["datasources"]
    for section in ("jsonData", "secureJsonData"):
        assert datasource[section].keys() == for_files[section].keys(), (
            "same data source as Grafana file setups"
        )
    assert datasource["jsonData"]["host"] == release.values["clickhouse"]["host"]
    assert datasource["secureJsonData"]["password"].startswith("${"), "no password in a ConfigMap"


def dashboard_maps(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m
        for m in manifests
        if m["kind"] == "ConfigMap" and m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]


def test_every_exported_dashboard_becomes_a_sidecar_config_map(release: Release) -> None:
    exported = sorted(p.name for p in (REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert sorted(name for m in dashboard_maps(release.manifests) for name in m["data"]) == exported


def test_dashboard_json_reaches_grafana_unchanged(tmp_path: Path) -> None:
    chart_dir = tmp_path / "gantry"
    shutil.copytree(REPO / "deploy" / "helm" / "gantry", chart_dir, symlinks=False)
    dashboard = {
        "title": "Journey times",
        "uid": "gantry-journeys",
        "panels": [{"title": "p50 {{ not a template }}"}],
    }
    for stale in (chart_dir / "dashboards").glob("*.json"):
        stale.unlink()
    (chart_dir / "dashboards" / "Journey_Times.json").write_text(json.dumps(dashboard, indent=2))
    with helm.Chart.load(chart_dir) as chart:
        manifests = render(chart, load_values("values.yaml"))
    (config_map,) = dashboard_maps(manifests)
    assert config_map["metadata"]["name"] == "gantry-dashboard-journey-times"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "Gantry"
    assert json.loads(config_map["data"]["Journey_Times.json"]) == dashboard
