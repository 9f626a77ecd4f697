"""The Helm charts under the real Helm engine (helm-python-sdk): lint, golden renders, value guards, drift.

These run offline (no API server); tests/integration/test_chart_install.py installs the charts.
Set MCP_OPERATOR_UPDATE_GOLDEN=1 to rewrite tests/fixtures/chart/golden/ after a reviewed change.
"""

from __future__ import annotations

import os
from typing import Any

import helm_python as helm
import pytest
import yaml

from controller.main import TRACING_FLAGS, parse_args
from telemetry.settings import settings_from_env
from tests.fixtures.chart.charts import (
    CRD_CHART,
    GOLDEN_DIR,
    OPERATOR_CHART,
    ROOT,
    VALUES_DIR,
    as_golden,
    load_values,
    render,
    rendered_objects,
    run_generator,
)
from tests.support.scrape import selects

BUILDER_GOLDEN = ROOT / "tests" / "unit" / "reconcilers" / "golden"
VALUES_FILES = sorted(path.stem for path in VALUES_DIR.glob("*.yaml"))
UPDATE_GOLDEN = os.environ.get("MCP_OPERATOR_UPDATE_GOLDEN") == "1"


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_at_least_five_values_files_are_covered() -> None:
    assert len(VALUES_FILES) >= 5, VALUES_FILES


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_operator_chart_lints_without_findings(values_file: str) -> None:
    report = helm.lint(OPERATOR_CHART, load_values(values_file), strict=True, namespace="mcp-operator-system")
    assert report["errors"] == []
    assert report["messages"] == []


def test_crd_chart_lints_without_findings() -> None:
    report = helm.lint(CRD_CHART, strict=True)
    assert report["errors"] == []
    assert report["messages"] == []


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_operator_chart_renders_golden_output(values_file: str) -> None:
    golden = GOLDEN_DIR / f"{values_file}.yaml"
    actual = as_golden(render(OPERATOR_CHART, load_values(values_file)))
    if UPDATE_GOLDEN:
        golden.write_text(actual)
    assert golden.exists(), f"{golden} is missing: run with MCP_OPERATOR_UPDATE_GOLDEN=1 and review it"
    assert actual == golden.read_text(), f"render differs from {golden.relative_to(ROOT)}"


def test_cluster_scope_grants_one_cluster_role_and_watches_everything() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("default")))
    names = [obj["metadata"]["name"] for obj in by_kind(objects, "ClusterRole")]
    assert names == ["mcp-operator-system-mcp-operator"]  # the release's namespace and full name
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["metadata"]["name"] == binding["roleRef"]["name"] == names[0]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "mcp-operator", "namespace": "mcp-operator-system"}
    ]
    (leader_role,) = by_kind(objects, "Role")
    assert leader_role["metadata"] == leader_role["metadata"] | {
        "name": "mcp-operator-leader-election",
        "namespace": "mcp-operator-system",
    }
    assert not any(arg.startswith("--namespace") for arg in operator_container(objects)["args"])
    assert by_kind(objects, "PodDisruptionBudget") == []
    assert by_kind(objects, "ServiceMonitor") == []
    assert by_kind(objects, "PodMonitor") == []


def test_namespace_scope_grants_roles_only_in_watched_namespaces() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("namespaced")))
    assert by_kind(objects, "ClusterRole") == []
    assert by_kind(objects, "ClusterRoleBinding") == []
    manager_roles = {
        obj["metadata"]["namespace"]: obj["rules"]
        for obj in by_kind(objects, "Role")
        if obj["metadata"]["name"] == "mcp-operator-system-mcp-operator"
    }
    assert sorted(manager_roles) == ["team-a", "team-b"]
    cluster_rules = by_kind(rendered_objects(render(OPERATOR_CHART)), "ClusterRole")[0]["rules"]
    assert manager_roles["team-a"] == manager_roles["team-b"] == cluster_rules
    args = operator_container(objects)["args"]
    assert [arg for arg in args if arg.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


@pytest.mark.parametrize("values_file", ["default", "namespaced"])
def test_two_releases_of_one_name_in_two_namespaces_claim_distinct_rbac_objects(values_file: str) -> None:
    """Helm release names are unique per namespace only: the same release name installed in two
    namespaces must not claim the same ClusterRole, ClusterRoleBinding or watched-namespace Role."""
    claimed: list[set[tuple[str, str | None, str]]] = []
    for namespace in ("team-a-operator", "team-b-operator"):
        objects = rendered_objects(
            render(OPERATOR_CHART, load_values(values_file), name="mcp-operator", namespace=namespace)
        )
        shared = [
            obj
            for obj in objects
            if obj["kind"].startswith("Cluster") or obj["metadata"].get("namespace") not in (None, namespace)
        ]
        assert shared, f"{values_file}: no cluster-scoped or watched-namespace object rendered"
        for obj in shared:
            if "roleRef" in obj:  # each binding grants its own release's role
                assert obj["roleRef"]["name"] == obj["metadata"]["name"]
                assert obj["subjects"][0]["namespace"] == namespace
        claimed.append({(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in shared})
    assert claimed[0].isdisjoint(claimed[1]), claimed


def test_more_than_one_replica_gets_a_disruption_budget() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("ha")))
    (budget,) = by_kind(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in budget["spec"]
    assert "--leader-elect=true" in operator_container(objects)["args"]


def test_pod_disruption_budget_uses_policy_v1beta1_on_clusters_without_v1() -> None:
    with helm.Chart.load(OPERATOR_CHART) as chart:
        template = next(t for t in chart.templates if t["name"] == "templates/poddisruptionbudget.yaml")
    assert 'APIVersions.Has "policy/v1"' in template["data"]
    assert "policy/v1beta1" in template["data"]


def test_service_monitor_scrapes_the_metrics_service() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("monitoring")))
    (monitor,) = by_kind(objects, "ServiceMonitor")
    (service,) = by_kind(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert service["spec"]["ports"][0]["port"] == 9090
    container = operator_container(objects)
    assert "--metrics-bind-address=:9090" in container["args"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]


def test_pod_monitor_selects_every_proxy_and_gateway_pod_and_no_server_pod() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("monitoring")))
    (monitor,) = by_kind(objects, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    # What the operator runs, from the builders' golden files of the three workload kinds.
    children = [
        obj
        for path in sorted(BUILDER_GOLDEN.glob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
        if obj["kind"] in ("Deployment", "StatefulSet")
    ]
    selected = [
        obj
        for obj in children
        if selects(monitor["spec"]["selector"], obj["spec"]["template"]["metadata"]["labels"])
    ]
    assert sorted(obj["kind"] for obj in selected) == ["Deployment"] * len(by_kind(children, "Deployment"))
    for obj in selected:
        ports = [p["name"] for c in obj["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
        assert endpoint["port"] in ports, obj["metadata"]["name"]
    namespaced = rendered_objects(
        render(OPERATOR_CHART, {**load_values("namespaced"), "metrics": load_values("monitoring")["metrics"]})
    )
    (scoped,) = by_kind(namespaced, "PodMonitor")
    assert scoped["spec"]["namespaceSelector"] == {
        "matchNames": load_values("namespaced")["rbac"]["watchNamespaces"]
    }


def test_tracing_values_become_the_variables_the_operator_reads() -> None:
    container = operator_container(rendered_objects(render(OPERATOR_CHART, load_values("monitoring"))))
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.monitoring:4317"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == {"secretKeyRef": {"name": "otel-auth", "key": "headers"}}
    variables = {name: value for name, value in env.items() if name.startswith("OTEL_")}
    readable = {flag.upper().replace("-", "_") for flag, _ in TRACING_FLAGS}
    assert set(variables) <= readable
    plain = {name: value for name, value in variables.items() if isinstance(value, str)}
    settings = settings_from_env(plain, "mcp-operator")
    assert settings is not None
    assert (settings.protocol, settings.insecure, settings.sampling_rate) == ("grpc", True, 0.5)
    default = operator_container(rendered_objects(render(OPERATOR_CHART)))
    assert not [e for e in default["env"] if e["name"].startswith("OTEL_")], "no tracing unless asked"


def test_pod_runs_non_root_read_only_without_capabilities() -> None:
    objects = rendered_objects(render(OPERATOR_CHART))
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = operator_container(objects)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_digest_pins_the_image_and_extra_env_is_appended() -> None:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("scheduling")))
    container = operator_container(objects)
    assert container["image"] == (
        "registry.example.com/platform/mcp-operator@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert list(env) == [
        "POD_NAME",
        "POD_NAMESPACE",
        "MCP_OPERATOR_PROXY_IMAGE",
        "MCP_OPERATOR_PROXY_IMAGE_PULL_POLICY",
        "HTTPS_PROXY",
        "NO_PROXY",
    ]
    # The proxies and gateways the operator creates run the very image the operator runs.
    assert env["MCP_OPERATOR_PROXY_IMAGE"] == container["image"]
    assert by_kind(objects, "ServiceAccount") == []
    assert by_kind(objects, "Service") == []
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-mcp-operator"


def test_extra_volumes_are_mounted_into_the_operator_container() -> None:
    values = {
        "extraVolumes": [{"name": "ca", "secret": {"secretName": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/corp-ca", "readOnly": True}],
    }
    objects = rendered_objects(render(OPERATOR_CHART, values))
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["volumes"] == values["extraVolumes"]
    assert operator_container(objects)["volumeMounts"] == values["extraVolumeMounts"]
    assert operator_container(objects)["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("values_file", ["default", "namespaced", "monitoring"])
def test_operator_command_line_accepts_the_rendered_arguments(values_file: str) -> None:
    values = load_values(values_file)
    container = operator_container(rendered_objects(render(OPERATOR_CHART, values)))
    assert container["args"][0] == "run"
    args = parse_args(container["args"][1:])
    merged = {**{"metrics": {"port": 8080}, "logLevel": "info"}, **values}
    assert args.leader_elect is True
    assert args.metrics_bind_address == f":{merged['metrics']['port']}"
    assert args.health_probe_bind_address == ":8081"
    assert args.log_level == merged["logLevel"]
    assert list(getattr(args, "namespace", None) or []) == values.get("rbac", {}).get("watchNamespaces", [])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac": {"scope": "namespace"}}, "watchNamespaces"),
        ({"rbac": {"scope": "namespace", "watchNamespaces": []}}, "watchNamespaces"),
        ({"rbac": {"scope": "tenant"}}, "scope"),
        ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "leaderElection.enabled"),
        (
            {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
            "metrics.service.enabled",
        ),
        ({"extraEnv": [{"name": "POD_NAMESPACE", "value": "x"}]}, "POD_NAMESPACE is set by the chart"),
        ({"logLevel": "verbose"}, "logLevel"),
        ({"replicas": 2}, "replicas"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}, "not both"),
    ],
)
def test_invalid_values_fail_with_a_message_naming_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as failure:
        render(OPERATOR_CHART, {"replicaCount": 2, **values} if "podDisruptionBudget" in values else values)
    assert message in str(failure.value)


def test_generated_chart_files_and_install_manifest_are_up_to_date() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, result.stderr


def test_crd_chart_ships_every_generated_crd_unchanged_and_kept_on_uninstall() -> None:
    sources = {}
    for path in sorted((ROOT / "manifests" / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                sources[doc["metadata"]["name"]] = doc
    assert sources, "manifests/crds/ is empty: run hack/generate.py, then hack/generate_chart.py"
    kept = {obj["metadata"]["name"]: obj for obj in rendered_objects(render(CRD_CHART))}
    assert sorted(kept) == sorted(sources)
    for name, crd in kept.items():
        assert crd["spec"] == sources[name]["spec"], name
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mcp-operator"
    for crd in rendered_objects(render(CRD_CHART, {"keep": False})):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_install_manifest_holds_namespace_crds_and_operator_in_apply_order() -> None:
    objects = [doc for doc in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if doc]
    kinds = [obj["kind"] for obj in objects]
    assert kinds[0] == "Namespace"
    assert kinds.index("Deployment") > max(i for i, kind in enumerate(kinds) if kind != "Deployment")
    crds = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert len(crds) == len(rendered_objects(render(CRD_CHART)))
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert "helm.sh/chart" not in labels
        assert labels.get("app.kubernetes.io/managed-by") != "Helm"
