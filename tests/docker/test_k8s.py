"""docker/k8s/: every manifest against Kubernetes' schemas, and the pieces against each other."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from aibridge_graphql.cli import main as cli_main
from aibridge_graphql.settings import Settings
from tests.support.docker_checks import (
    DOCKERFILE,
    click_options,
    gateway_get_routes,
    k8s_files,
    k8s_object,
    k8s_objects,
    load_yaml_documents,
    read_stages,
)

# The oldest Kubernetes minor still commonly run, and the newest the schema package ships.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
NAME = "aibridge-graphql"


def gateway_pod() -> dict[str, Any]:
    pod: dict[str, Any] = k8s_object("Deployment", NAME)["spec"]["template"]
    return pod


def gateway_container() -> dict[str, Any]:
    (container,) = gateway_pod()["spec"]["containers"]
    return dict(container)


def deployments() -> list[dict[str, Any]]:
    return [obj for obj in k8s_objects() if obj["kind"] == "Deployment"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", k8s_files(), ids=lambda path: Path(path).name)
def test_manifest_matches_the_kubernetes_schema(path: Path, version: str) -> None:
    for document in load_yaml_documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_schema_check_rejects_a_misplaced_field() -> None:
    broken = copy.deepcopy(k8s_object("Deployment", NAME))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_expected_objects_exist() -> None:
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in k8s_objects()}
    for kind in (
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ):
        assert (kind, NAME) in kinds


def test_probes_hit_real_routes_on_the_named_port() -> None:
    container = gateway_container()
    port_names = {port["name"] for port in container["ports"]}
    routes = gateway_get_routes()
    # Readiness asks the standard gRPC health service, SERVING exactly when /readyz is 200.
    grpc_ports = [port for port in container["ports"] if port["name"] == "grpc"]
    assert container["readinessProbe"]["grpc"]["port"] == grpc_ports[0]["containerPort"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "startupProbe"):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] in routes, probe
        assert http_get["port"] in port_names, probe


def test_configmap_is_valid_settings_and_matches_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, str] = k8s_object("ConfigMap", NAME)["data"]
    for key, value in data.items():
        assert key.startswith("AIBRIDGE_"), key
        assert key.removeprefix("AIBRIDGE_").lower() in Settings.model_fields, key
        monkeypatch.setenv(key, value)
    settings = Settings()
    http, grpc = gateway_container()["ports"]
    assert http["containerPort"] == settings.port
    assert grpc["containerPort"] == settings.grpc_port
    assert settings.host == "0.0.0.0"  # noqa: S104 (pods are reached by their IP)
    refs = [source["configMapRef"]["name"] for source in gateway_container()["envFrom"]]
    assert refs == [NAME]


def test_service_selects_the_pods_and_targets_the_named_port() -> None:
    service = k8s_object("Service", NAME)
    labels = gateway_pod()["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    selector = k8s_object("Deployment", NAME)["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    port_names = {port["name"] for port in gateway_container()["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names


def test_hpa_scales_the_deployment_on_cpu() -> None:
    hpa = k8s_object("HorizontalPodAutoscaler", NAME)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", NAME)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    # CPU utilisation is a share of the request: without one the HPA cannot act.
    assert "cpu" in gateway_container()["resources"]["requests"]
    # The HPA owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in k8s_object("Deployment", NAME)["spec"]


def configmap_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in k8s_object("ConfigMap", NAME)["data"].items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_termination_grace_covers_prestop_drain_and_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = configmap_settings(monkeypatch)
    pre_stop = gateway_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep", pre_stop
    pause = float(pre_stop[1])
    # The pod leaves the endpoints during the pause; a pause under a few seconds races them.
    assert pause >= 3
    # Kubernetes counts the preStop pause in the grace; its SIGKILL must not cut the gateway's
    # drain and grace, and closing (pools, the interpreter) takes a few seconds more.
    budget = gateway_pod()["spec"]["terminationGracePeriodSeconds"]
    assert budget >= pause + settings.shutdown_drain_delay + settings.shutdown_grace + 5
    # Rolling updates start the new pod before the old one stops: no capacity lost meanwhile.
    rolling = k8s_object("Deployment", NAME)["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def test_pdb_keeps_a_pod_and_allows_an_eviction() -> None:
    pdb = k8s_object("PodDisruptionBudget", NAME)
    assert pdb["apiVersion"] == "policy/v1"
    labels = gateway_pod()["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    min_replicas = k8s_object("HorizontalPodAutoscaler", NAME)["spec"]["minReplicas"]
    # At least one pod through a drain, and a node drain can still evict one (no deadlock).
    assert 1 <= pdb["spec"]["minAvailable"] < min_replicas
    assert "maxUnavailable" not in pdb["spec"]


def test_hpa_scales_down_one_pod_at_a_time() -> None:
    scale_down = k8s_object("HorizontalPodAutoscaler", NAME)["spec"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 60
    (policy,) = scale_down["policies"]
    assert (policy["type"], policy["value"]) == ("Pods", 1)


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_pods_are_locked_down(deployment: dict[str, Any]) -> None:
    _, stages = read_stages(DOCKERFILE)
    image_uid = int(stages[-1].all("USER")[-1].args.split(":")[0])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys()
        assert "memory" in resources["limits"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert "/tmp" in mounts, "a read-only root needs a writable /tmp"  # noqa: S108


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_container_args_are_real_cli_commands(deployment: dict[str, Any]) -> None:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        args: list[str] = container["args"]
        assert args[0] in cli_main.commands
        used = {word for word in args[1:] if word.startswith("--")}
        assert used <= click_options(args[0])


def test_standin_demo_takes_its_token_from_a_secret() -> None:
    (container,) = k8s_object("Deployment", "aibridge-standin")["spec"]["template"]["spec"][
        "containers"
    ]
    args: list[str] = container["args"]
    token_ref = args[args.index("--admin-token") + 1]
    (env,) = [item for item in container["env"] if f"$({item['name']})" == token_ref]
    assert "secretKeyRef" in env["valueFrom"]
    service = k8s_object("Service", "aibridge-standin")
    upstream = k8s_object("ConfigMap", NAME)["data"]["AIBRIDGE_UPSTREAM_URL"]
    assert upstream == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
