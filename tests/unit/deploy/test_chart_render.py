"""The chart renders the workloads the issue asks for, and every manifest is valid Kubernetes."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
from chart_release import CHART_DIR, KUBE_VERSION, NAMESPACE, VALUES_FILES, Release, load_values, render

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


# The Prometheus Operator's CRD, likewise: the monitoring.coreos.com/v1 ServiceMonitor fields the
# chart uses, unknown fields rejected.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["matchLabels"],
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                        "any": {"type": "boolean"},
                    },
                },
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}
# Kinds whose CRDs are not available offline: checked structurally by the tests below.
CUSTOM_KINDS = ("RayCluster", "ServiceMonitor")


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


def test_every_manifest_validates_against_kubernetes(release: Release, monitored_release: Release) -> None:
    for manifest in release.manifests + monitored_release.manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_validation_rejects_an_unknown_field(release: Release) -> None:
    """Guards the test above: strict validation must notice a misspelt field."""
    statefulset = copy.deepcopy(release.get("StatefulSet", "gantry-ingest"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBE_VERSION, strict=True)


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


def test_ingest_is_a_statefulset_behind_a_service_scaled_on_cpu(release: Release) -> None:
    statefulset = release.get("StatefulSet", "gantry-ingest")
    service = release.get("Service", "gantry-ingest")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod_labels
    governing = release.get("Service", statefulset["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    assert governing["spec"]["selector"].items() <= pod_labels
    hpas = release.of_kind("HorizontalPodAutoscaler")
    if release.values["ingest"]["autoscaling"]["enabled"]:
        (hpa,) = hpas
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "gantry-ingest",
        }
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in statefulset["spec"], "the HPA owns the replica count"
    else:
        assert hpas == []
        assert statefulset["spec"]["replicas"] == release.values["ingest"]["replicas"]


def test_ingest_volumes_outlive_their_pods(release: Release) -> None:
    """A spool holds reads a camera was told were accepted: scaling down must not delete it."""
    spec = release.get("StatefulSet", "gantry-ingest")["spec"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
    assert "spool" in claims
    assert not claims & {v["name"] for v in spec["template"]["spec"]["volumes"]}, "claims, not emptyDirs"
    (container,) = spec["template"]["spec"]["containers"]
    drain = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert f"ls {mounts['spool']} " in drain, "the pod waits for its own spool to drain"
    assert (
        spec["template"]["spec"]["terminationGracePeriodSeconds"] > release.values["ingest"]["drainSeconds"]
    )


def test_several_ingest_pods_with_local_snapshots_is_a_render_error(chart: helm.Chart) -> None:
    values = load_values("values-small.yaml")
    values["ingest"]["replicas"] = 2
    with pytest.raises(helm.HelmRenderError, match=r"config\.ingest\.snapshot_url: several ingest pods"):
        render(chart, values)
    values["config"]["ingest"]["snapshot_url"] = "s3://snapshots/city"
    assert "snapshots" not in {
        c["metadata"]["name"]
        for m in render(chart, values)
        if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "gantry-ingest"
        for c in m["spec"]["volumeClaimTemplates"]
    }


def test_object_store_credentials_come_from_a_secret_or_the_pod_identity(chart: helm.Chart) -> None:
    values = load_values("values-small.yaml")
    values["config"]["ingest"]["snapshot_url"] = "s3://snapshots/city"
    keys = {"AWS_ACCESS_KEY_ID": "AKIA-test", "AWS_SECRET_ACCESS_KEY": "secret-test"}
    values["secrets"]["objectStore"] = {"existingSecret": "", "data": keys}

    def aws_env(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
        (workload,) = [m for m in manifests if (m["kind"], m["metadata"]["name"]) == (kind, name)]
        spec = workload["spec"].get("jobTemplate", workload)["spec"]["template"]["spec"]
        return {
            v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
            for v in spec["containers"][0]["env"]
            if v["name"].startswith("AWS_")
        }

    manifests = render(chart, values)
    for kind, name in (("StatefulSet", "gantry-ingest"), ("CronJob", "gantry-prune-snapshots"),
                       ("Deployment", "gantry-recognizer"), ("Deployment", "gantry-api")):
        assert aws_env(manifests, kind, name) == dict.fromkeys(keys, "gantry-object-store")
    assert aws_env(manifests, "Deployment", "gantry-sink") == {}, "only what stores or shows pictures"
    (secret,) = [
        m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == "gantry-object-store"
    ]
    assert secret["stringData"] == keys
    values["secrets"]["objectStore"] = {"existingSecret": "", "data": {}}
    assert aws_env(render(chart, values), "StatefulSet", "gantry-ingest") == {}


def test_snapshot_pruning_reaches_the_store(release: Release) -> None:
    cronjob = release.get("CronJob", "gantry-prune-snapshots")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["ingest", "prune-snapshots"]
    assert_reaches_the_snapshot_store(release, pod)


@pytest.mark.parametrize("name", ["gantry-recognizer", "gantry-api"])
def test_reads_from_video_and_the_api_reach_the_snapshot_store(release: Release, name: str) -> None:
    """The recognizer writes the pictures of reads from video, the API shows them."""
    assert_reaches_the_snapshot_store(release, release.get("Deployment", name)["spec"]["template"]["spec"])


def test_the_api_is_a_service_for_operators_only_where_the_policy_says(chart: helm.Chart) -> None:
    values = load_values("values-small.yaml")
    values["networkPolicy"]["apiFrom"] = [{"namespaceSelector": {"matchLabels": {"name": "ingress"}}}]
    manifests = render(chart, values)
    (policy,) = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    (rule,) = [r for r in policy["spec"]["ingress"] if {"port": "api", "protocol": "TCP"} in r.get("ports", [])]
    assert rule["from"] == values["networkPolicy"]["apiFrom"]
    (service,) = [m for m in manifests if (m["kind"], m["metadata"]["name"]) == ("Service", "gantry-api")]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    values["api"]["enabled"] = False
    off = render(chart, values)
    assert not [m for m in off if m["metadata"]["name"] == "gantry-api"]
    assert not [s for s in off if s["kind"] == "Secret" and s["metadata"]["name"] == "gantry-api-tokens"]


def assert_reaches_the_snapshot_store(release: Release, pod: dict[str, Any]) -> None:
    """A local store is reached on the single ingest pod's claim, on its node; an object store needs nothing."""
    statefulset = release.get("StatefulSet", "gantry-ingest")
    local = [c for c in statefulset["spec"]["volumeClaimTemplates"] if c["metadata"]["name"] == "snapshots"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    if local:
        # StatefulSet claims are named <template>-<statefulset>-<ordinal>; a local store means one pod.
        assert claims == [f"snapshots-{statefulset['metadata']['name']}-0"]
        (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"] == statefulset["spec"]["selector"]["matchLabels"]
        assert term["topologyKey"] == "kubernetes.io/hostname", "a ReadWriteOnce volume: same node"
        mount = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}["snapshots"]
        ingest_mounts = {
            m["name"]: m["mountPath"]
            for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        }
        assert mount == ingest_mounts["snapshots"]
    else:
        assert claims == [] and "affinity" not in pod


def test_video_streams_get_one_reader_pod(release: Release) -> None:
    streams = release.values["config"]["ingest"].get("streams")
    readers = [d for d in release.of_kind("Deployment") if d["metadata"]["name"] == "gantry-ingest-streams"]
    assert len(readers) == (1 if streams else 0)
    for reader in readers:
        assert reader["spec"]["replicas"] == 1
        assert reader["spec"]["strategy"] == {"type": "Recreate"}, "two readers would send every frame twice"
        assert reader["spec"]["template"]["spec"]["containers"][0]["args"] == ["ingest", "run"]


def test_service_monitor_is_off_by_default(release: Release) -> None:
    assert release.of_kind("ServiceMonitor") == []


def test_service_monitor_matches_prometheus_operator_structure(monitored_release: Release) -> None:
    (monitor,) = monitored_release.of_kind("ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack", "labels Prometheus selects by"
    misspelt = copy.deepcopy(monitor)
    misspelt["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, SERVICE_MONITOR_SCHEMA)


def test_service_monitor_scrapes_every_gantry_process(monitored_release: Release) -> None:
    release = monitored_release
    (monitor,) = release.of_kind("ServiceMonitor")
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    (service,) = [s for s in release.of_kind("Service") if selector <= s["metadata"]["labels"].items()]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert service["spec"]["clusterIP"] == "None", "Prometheus scrapes each pod, not a load balancer"
    pod_selector = service["spec"]["selector"].items()
    for owner, template in release.pod_templates():
        serves_metrics = any(
            p["name"] == port["targetPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        )
        assert serves_metrics is owner.startswith(("Deployment/", "StatefulSet/")), owner
        if serves_metrics:
            assert pod_selector <= template["metadata"]["labels"].items(), f"{owner} is not scraped"


def test_stream_jobs_are_one_pod_per_worker_with_no_volume_claim(release: Release) -> None:
    """State lives in changelog topics: a worker claims no volume (its data folder is scratch),
    and the StatefulSet is there for a stable worker index."""
    statefulset = release.get("StatefulSet", "gantry-jobs")
    config = release.values["config"]
    assert statefulset["spec"]["replicas"] == config["stream_jobs"]["workers"]
    assert "volumeClaimTemplates" not in statefulset["spec"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert mounts["data"] == config["data_dir"] and volumes["data"]["emptyDir"] == {}
    assert "--worker-index" in container["args"]
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
