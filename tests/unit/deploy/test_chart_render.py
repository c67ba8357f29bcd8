"""The chart renders the workloads the issue asks for, and every manifest is valid Kubernetes."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
from chart_release import CHART_DIR, KUBE_VERSION, VALUES_FILES, Release, load_values, render

# KubeRay's CRD is not available offline, so RayCluster is checked structurally: the fields this
# chart uses, as the ray.io/v1 CRD names them (unknown fields rejected), plus each pod template
# against Kubernetes' own PodTemplateSpec schema.
RAY_START_PARAMS = {"type": "object", "additionalProperties": {"type": "string"}}
RAY_CLUSTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["headGroupSpec"],
            "properties": {
                "rayVersion": {"type": "string"},
                "enableInTreeAutoscaling": {"type": "boolean"},
                "autoscalerOptions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
                        "idleTimeoutSeconds": {"type": "integer", "minimum": 0},
                        "securityContext": {"type": "object"},
                        "resources": {"type": "object"},
                    },
                },
                "headGroupSpec": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["template"],
                    "properties": {
                        "rayStartParams": RAY_START_PARAMS,
                        "serviceType": {"type": "string"},
                        "template": {"type": "object"},
                    },
                },
                "workerGroupSpecs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["groupName", "template", "maxReplicas"],
                        "properties": {
                            "groupName": {"type": "string", "minLength": 1},
                            "replicas": {"type": "integer", "minimum": 0},
                            "minReplicas": {"type": "integer", "minimum": 0},
                            "maxReplicas": {"type": "integer", "minimum": 1},
                            "rayStartParams": RAY_START_PARAMS,
                            "template": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}


def validate_pod_template(template: dict[str, Any], name: str) -> None:
    as_pod_template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": template,
    }
    kubernetes_validate.validate(as_pod_template, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_finds_nothing(values_file: str) -> None:
    report = helm.lint(CHART_DIR, load_values(values_file), strict=True, kube_version=f"v{KUBE_VERSION}")
    warnings = [m for m in report["messages"] if m["severity"] >= 2]
    assert (report["errors"], warnings) == ([], [])


def test_every_manifest_validates_against_kubernetes(release: Release) -> None:
    for manifest in release.manifests:
        if manifest["kind"] == "RayCluster":
            continue
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_validation_rejects_an_unknown_field(release: Release) -> None:
    """Guards the test above: strict validation must notice a misspelt field."""
    deployment = copy.deepcopy(release.get("Deployment", "gantry-ingest"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_ray_cluster_matches_kuberay_structure(release: Release) -> None:
    clusters = release.of_kind("RayCluster")
    ray = release.values["recognize"]["ray"]
    assert len(clusters) == (1 if ray["enabled"] else 0)
    for cluster in clusters:
        jsonschema.validate(cluster, RAY_CLUSTER_SCHEMA)
        spec = cluster["spec"]
        validate_pod_template(spec["headGroupSpec"]["template"], "head")
        for group in spec["workerGroupSpecs"]:
            validate_pod_template(group["template"], group["groupName"])
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_ray_head_is_cpu_only_and_workers_request_gpus(release: Release) -> None:
    ray = release.values["recognize"]["ray"]
    for cluster in release.of_kind("RayCluster"):
        head = cluster["spec"]["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0", "actors must not land on the head"
        assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"].get(
            "limits", {}
        )
        (workers,) = cluster["spec"]["workerGroupSpecs"]
        limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == ray["workers"]["gpusPerWorker"] >= 1
        assert (workers["minReplicas"], workers["maxReplicas"]) == (
            ray["workers"]["minReplicas"],
            ray["workers"]["maxReplicas"],
        )
        assert cluster["spec"]["enableInTreeAutoscaling"] is ray["autoscaling"]["enabled"]


def test_ingest_is_a_deployment_behind_a_service_scaled_on_cpu(release: Release) -> None:
    deployment = release.get("Deployment", "gantry-ingest")
    service = release.get("Service", "gantry-ingest")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    hpas = release.of_kind("HorizontalPodAutoscaler")
    if release.values["ingest"]["autoscaling"]["enabled"]:
        (hpa,) = hpas
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "gantry-ingest",
        }
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    else:
        assert hpas == []
        assert deployment["spec"]["replicas"] == release.values["ingest"]["replicas"]


def test_stream_jobs_have_one_volume_per_worker(release: Release) -> None:
    statefulset = release.get("StatefulSet", "gantry-jobs")
    config = release.values["config"]
    assert statefulset["spec"]["replicas"] == config["stream_jobs"]["workers"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config["data_dir"]
    assert claim["metadata"]["name"] not in {
        v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]
    }
    assert release.get("Service", statefulset["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_migrations_run_before_install_and_upgrade_with_what_they_need(release: Release) -> None:
    """A pre-install hook runs before the release's own resources exist: what the Job mounts or
    reads must itself be a hook of lower weight, or live outside the release."""
    job = release.get("Job", "gantry-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["warehouse", "migrate"]
    assert "serviceAccountName" not in pod or not release.values["serviceAccount"]["create"]
    config_map = release.get("ConfigMap", pod["volumes"][0]["configMap"]["name"])
    prerequisites = [config_map] + [
        s
        for var in pod["containers"][0]["env"]
        if (ref := var.get("valueFrom", {}).get("secretKeyRef"))
        for s in release.of_kind("Secret")
        if s["metadata"]["name"] == ref["name"]
    ]
    for resource in prerequisites:
        annotations = resource["metadata"].get("annotations", {})
        assert "pre-install" in annotations.get("helm.sh/hook", ""), resource["metadata"]["name"]
        assert int(annotations["helm.sh/hook-weight"]) < weight
    assert config_map["data"] == release.get("ConfigMap", "gantry")["data"]


def test_disruption_budgets_select_exactly_one_workload(release: Release) -> None:
    budgets = release.of_kind("PodDisruptionBudget")
    assert bool(budgets) is release.values["podDisruptionBudget"]["enabled"]
    workloads = [m for m in release.manifests if m["kind"] in ("Deployment", "StatefulSet")]
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"].items()
        selected = [w for w in workloads if selector <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, budget["metadata"]["name"]


def test_pods_run_as_non_root_without_privileges(release: Release) -> None:
    for owner, template in release.pod_templates():
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, owner
        for container in template["spec"]["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
    for owner, container in release.gantry_containers():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, owner
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, owner


def test_network_policy_opens_ports_the_pods_declare(release: Release) -> None:
    (policy,) = release.of_kind("NetworkPolicy")
    selector = policy["spec"]["podSelector"]["matchLabels"].items()
    templates = release.pod_templates()
    assert all(selector <= t["metadata"]["labels"].items() for _, t in templates), "every pod is covered"
    declared = {p["name"] for _, c in release.containers() for p in c.get("ports", [])}
    opened = {p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])}
    assert opened <= declared
    assert {"http", "health"} <= opened


def test_a_missing_secret_is_a_clear_render_error(chart: helm.Chart) -> None:
    values = load_values("values-small.yaml")
    values["secrets"]["clickhouse"] = {"existingSecret": "", "data": {"username": "gantry"}}
    with pytest.raises(
        helm.HelmRenderError, match=r"secrets\.clickhouse: set existingSecret or data\.password"
    ):
        render(chart, values)


def test_a_misspelt_value_is_rejected_by_the_values_schema(chart: helm.Chart) -> None:
    values = load_values("values-small.yaml")
    values["ingest"]["autoscalling"] = {"enabled": True}
    with pytest.raises(helm.HelmValuesError, match="'autoscalling' not allowed"):
        render(chart, values)
