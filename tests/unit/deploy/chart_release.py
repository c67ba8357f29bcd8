"""The Helm chart rendered offline (Helm's Go SDK via helm-python-sdk: no helm binary, no cluster),
and what the tests read from it: manifests as plain dicts and the environment pods would get."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART_DIR = REPO / "deploy" / "helm" / "gantry"
VALUES_FILES = ("values.yaml", "values-gpu.yaml", "values-small.yaml")
RELEASE = "gantry"
NAMESPACE = "anpr"
# The Kubernetes version the manifests are validated against (a current release).
KUBE_VERSION = "1.35.0"

_ENV_REF = re.compile(r"\$\((\w+)\)")


@dataclass(frozen=True)
class Release:
    """One rendered install: the merged values and every manifest, hooks included."""

    values_file: str
    values: dict[str, Any]
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
        return matches[0]

    def pod_templates(self) -> list[tuple[str, dict[str, Any]]]:
        """(owner, pod template) for every pod the release creates, Ray nodes included."""
        templates = []
        for m in self.manifests:
            owner = f"{m['kind']}/{m['metadata']['name']}"
            if m["kind"] in ("Deployment", "StatefulSet", "Job"):
                templates.append((owner, m["spec"]["template"]))
            elif m["kind"] == "CronJob":
                templates.append((owner, m["spec"]["jobTemplate"]["spec"]["template"]))
            elif m["kind"] == "RayCluster":
                templates.append((f"{owner}/head", m["spec"]["headGroupSpec"]["template"]))
                for group in m["spec"]["workerGroupSpecs"]:
                    templates.append((f"{owner}/{group['groupName']}", group["template"]))
        return templates

    def containers(self) -> list[tuple[str, dict[str, Any]]]:
        return [(owner, c) for owner, t in self.pod_templates() for c in t["spec"]["containers"]]

    def gantry_containers(self) -> list[tuple[str, dict[str, Any]]]:
        """Containers that run a `gantry` command (not the Ray nodes KubeRay starts)."""
        return [(owner, c) for owner, c in self.containers() if c.get("command") == ["gantry"]]

    def secret_data(self, name: str) -> dict[str, str] | None:
        """A Secret this release creates, or None when it is not rendered here."""
        secrets = [s for s in self.of_kind("Secret") if s["metadata"]["name"] == name]
        return secrets[0].get("stringData", {}) if secrets else None


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values and args; unknown names stay as written."""
    return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def container_environment(release: Release, container: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes would give ``container``: secrets resolved, $(VAR) expanded.

    External secrets resolve to a URL-safe stand-in ``<secret>-<key>``; the downward-API worker
    index resolves to 0.
    """
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
        elif ref := var["valueFrom"].get("secretKeyRef"):
            data = release.secret_data(ref["name"])
            env[var["name"]] = data[ref["key"]] if data is not None else f"{ref['name']}-{ref['key']}"
        elif "fieldRef" in var["valueFrom"]:
            env[var["name"]] = "0"
    return env


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def load_values(values_file: str) -> dict[str, Any]:
    return yaml.safe_load((CHART_DIR / values_file).read_text()) or {}


def with_service_monitor(values: dict[str, Any]) -> dict[str, Any]:
    """The values with the optional Prometheus Operator ServiceMonitor switched on."""
    monitor = {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}
    return {**values, "metrics": {"serviceMonitor": monitor}}
