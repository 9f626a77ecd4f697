"""Install, upgrade and uninstall both charts into the real kube-apiserver with the real Helm engine.

Also applies manifests/install.yaml with kubectl and the examples, and checks `kubectl get mcp -A`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import helm_python as helm
import pytest
import yaml

from controller.core.objects import carries
from tests.fixtures.chart.charts import (
    CRD_CHART,
    FIXTURES,
    OPERATOR_CHART,
    ROOT,
    adopt_crds,
    create_namespace,
    delete_namespaces,
    generated_crds,
    helm_config,
    load_values,
    unique,
)
from tests.support.cluster import Cluster


@dataclass
class CrdRelease:
    config: helm.Config
    name: str
    namespace: str


@pytest.fixture(scope="module")
def crd_release(cluster: Cluster) -> Iterator[CrdRelease]:
    """The CRD chart installed as a fresh release (taking over CRDs applied earlier by kubectl).

    The last test of this module uninstalls it; the others only read it.
    """
    namespace = create_namespace(cluster, "crds")
    name = "mcp-operator-crds"
    adopt_crds(cluster, name, namespace)
    with helm_config(cluster, namespace) as cfg:
        cfg.install(CRD_CHART, name, namespace=namespace, timeout=120)
        yield CrdRelease(cfg, name, namespace)
        if any(release["name"] == name for release in cfg.list()):
            cfg.uninstall(name)
    delete_namespaces(cluster, namespace)


def live_objects(cluster: Cluster, manifest: str) -> list[dict[str, Any]]:
    """Every object of a rendered manifest as the API server has it (fails if one is missing)."""
    result = cluster.kubectl("get", "-f", "-", "-o", "json", input=manifest, check=False)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    return list(listed["items"]) if listed.get("kind") == "List" else [listed]


def manifest_objects(manifest: str) -> list[tuple[str, str]]:
    return sorted((doc["kind"], doc["metadata"]["name"]) for doc in yaml.safe_load_all(manifest) if doc)


@pytest.mark.parametrize("values_file", ["default", "namespaced", "ha", "monitoring", "scheduling"])
def test_operator_chart_installs_every_object_and_uninstalls_them(
    cluster: Cluster, crd_release: CrdRelease, values_file: str
) -> None:
    values = load_values(values_file)
    namespace = create_namespace(cluster, "op")
    watched: list[str] = []
    if values.get("rbac", {}).get("scope") == "namespace":
        watched = [create_namespace(cluster, "team") for _ in range(2)]
        values["rbac"]["watchNamespaces"] = watched
    if values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"):
        servicemonitor_crd = (FIXTURES / "servicemonitor-crd.yaml").read_text()
        cluster.kubectl("apply", "-f", "-", input=servicemonitor_crd)
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/podmonitors.monitoring.coreos.com",
        )
    release = unique("chart")
    try:
        with helm_config(cluster, namespace) as cfg:
            installed = cfg.install(OPERATOR_CHART, release, values, namespace=namespace, timeout=120)
            assert installed["status"] == "deployed"
            manifest = cfg.status(release)["manifest"]
            expected = manifest_objects(manifest)
            assert ("Deployment", values.get("fullnameOverride", f"{release}-mcp-operator")) in expected
            live = live_objects(cluster, manifest)
            assert sorted((obj["kind"], obj["metadata"]["name"]) for obj in live) == expected
            if watched:
                roles = [obj for obj in live if obj["kind"] == "Role"]
                role_namespaces = {obj["metadata"]["namespace"] for obj in roles}
                assert role_namespaces == {*watched, namespace}
                assert not [obj for obj in live if obj["kind"].startswith("Cluster")]
            cfg.uninstall(release)
            leftovers = cluster.kubectl("get", "-f", "-", "-o", "name", input=manifest, check=False)
            assert leftovers.stdout.strip() == ""
    finally:
        delete_namespaces(cluster, namespace, *watched)


def test_operator_chart_upgrade_adds_a_disruption_budget_for_more_replicas(
    cluster: Cluster, crd_release: CrdRelease
) -> None:
    namespace = create_namespace(cluster, "op")
    release = unique("chart")
    try:
        with helm_config(cluster, namespace) as cfg:
            cfg.install(OPERATOR_CHART, release, namespace=namespace, timeout=120)
            budget = cluster.kubectl("get", "pdb", "-n", namespace, "-o", "name")
            assert budget.stdout.strip() == ""
            upgraded = cfg.upgrade(
                OPERATOR_CHART, release, {"replicaCount": 2}, namespace=namespace, timeout=120
            )
            assert upgraded["revision"] == 2
            deployment = json.loads(
                cluster.kubectl(
                    "get", "deployment", f"{release}-mcp-operator", "-n", namespace, "-o", "json"
                ).stdout
            )
            assert deployment["spec"]["replicas"] == 2
            budget = cluster.kubectl("get", "pdb", "-n", namespace, "-o", "name")
            assert budget.stdout.strip() == f"poddisruptionbudget.policy/{release}-mcp-operator"
            cfg.uninstall(release)
    finally:
        delete_namespaces(cluster, namespace)


def test_two_releases_of_one_name_install_side_by_side(cluster: Cluster, crd_release: CrdRelease) -> None:
    """The same release name in two namespaces (as two teams would install it): both install, each
    ClusterRoleBinding grants its own ServiceAccount, and uninstalling one leaves the other's in place."""
    namespaces = [create_namespace(cluster, "op") for _ in range(2)]
    release = unique("side")
    rbac_names = [f"{namespace}-{release}-mcp-operator" for namespace in namespaces]
    try:
        with ExitStack() as stack:
            configs = [stack.enter_context(helm_config(cluster, namespace)) for namespace in namespaces]
            for cfg, namespace in zip(configs, namespaces, strict=True):
                installed = cfg.install(OPERATOR_CHART, release, namespace=namespace, timeout=120)
                assert installed["status"] == "deployed", installed
            for name, namespace in zip(rbac_names, namespaces, strict=True):
                binding = json.loads(cluster.kubectl("get", "clusterrolebinding", name, "-o", "json").stdout)
                assert binding["roleRef"]["name"] == name
                assert binding["subjects"][0]["namespace"] == namespace
            configs[0].uninstall(release)
            gone = cluster.kubectl("get", "clusterrole", rbac_names[0], check=False)
            assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout
            cluster.kubectl("get", "clusterrole,clusterrolebinding", rbac_names[1])
            configs[1].uninstall(release)
    finally:
        delete_namespaces(cluster, *namespaces)


def printer_columns(crd: dict[str, Any]) -> list[str]:
    (served,) = [version for version in crd["spec"]["versions"] if version.get("storage")]
    return [column["name"].upper() for column in served.get("additionalPrinterColumns", [])]


def test_examples_apply_and_kubectl_get_mcp_shows_printer_columns(
    cluster: Cluster, crd_release: CrdRelease
) -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples, "examples/ is empty"
    namespace = create_namespace(cluster, "examples")
    try:
        for example in examples:
            applied = cluster.kubectl("apply", "-n", namespace, "-f", str(example), check=False)
            assert applied.returncode == 0, f"{example.name}: {applied.stderr}"
        for example in examples:
            for doc in yaml.safe_load_all(example.read_text()):
                if not doc or not doc["apiVersion"].startswith("mcp-operator.dev/"):
                    continue
                live = cluster.kubectl(
                    "get", doc["kind"], doc["metadata"]["name"], "-n", namespace, "-o", "json"
                )
                spec = json.loads(live.stdout).get("spec") or {}  # an MCPGroup may be written without one
                wrote = doc.get("spec") or {}
                assert carries(spec, wrote), f"{example.name}: {doc['kind']} fields were pruned: {spec}"
        listed = cluster.kubectl("get", "mcp", "-A")
        tables = [block for block in listed.stdout.split("\n\n") if block.strip()]
        headers = {}
        for table in tables:
            header, *rows = table.splitlines()
            kind_rows = [row for row in rows if row.startswith(namespace)]
            assert kind_rows, table
            resource = kind_rows[0].split()[1].split("/")[0]
            headers[resource] = header.split()
        applied_kinds = {
            doc["kind"]
            for example in examples
            for doc in yaml.safe_load_all(example.read_text())
            if doc and doc.get("apiVersion", "").startswith("mcp-operator.dev/")
        }
        crds = {crd["spec"]["names"]["kind"]: crd for crd in generated_crds()}
        for kind in sorted(applied_kinds):
            crd = crds[kind]
            resource = f"{crd['spec']['names']['singular']}.{crd['spec']['group']}"
            assert resource in headers, f"kubectl get mcp -A lists no {kind}: {listed.stdout}"
            header = " ".join(headers[resource])
            for column in printer_columns(crd):
                assert column in header, f"{kind}: column {column} missing from {header}"
    finally:
        delete_namespaces(cluster, namespace)


@pytest.mark.usefixtures("controller_manager")  # finishes deleting the namespace afterwards
def test_install_manifest_applies_with_kubectl(cluster: Cluster, crd_release: CrdRelease) -> None:
    """The plain-kubectl install: CRDs dry-run on the server (the CRD release owns them), the rest real."""
    documents = [doc for doc in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if doc]
    crds = [doc for doc in documents if doc["kind"] == "CustomResourceDefinition"]
    rest = [doc for doc in documents if doc["kind"] != "CustomResourceDefinition"]
    if crds:
        dry_run = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all(crds), check=False,
        )  # fmt: skip
        assert dry_run.returncode == 0, dry_run.stderr
    manifest = yaml.safe_dump_all(rest)
    namespace = rest[0]["metadata"]["name"]
    cluster.kubectl("wait", "--for=delete", f"namespace/{namespace}", "--timeout=90s", check=False)
    try:
        applied = cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest, check=False)
        assert applied.returncode == 0, applied.stderr
        live = live_objects(cluster, manifest)
        assert sorted((obj["kind"], obj["metadata"]["name"]) for obj in live) == manifest_objects(manifest)
    finally:
        cluster.kubectl(
            "delete", "-f", "-", "--wait=false", "--ignore-not-found", input=manifest, check=False
        )


def crd_annotations(cluster: Cluster) -> dict[str, dict[str, str]]:
    listed = json.loads(cluster.kubectl("get", "crd", "-o", "json").stdout)
    return {
        item["metadata"]["name"]: item["metadata"].get("annotations", {})
        for item in listed["items"]
        if item["spec"]["group"] == "mcp-operator.dev"
    }


def test_crd_chart_upgrade_updates_the_crds_and_uninstall_keeps_them(
    cluster: Cluster, crd_release: CrdRelease
) -> None:
    names = sorted(crd["metadata"]["name"] for crd in generated_crds())
    assert names, "manifests/crds/ is empty: run hack/generate.py, then hack/generate_chart.py"
    before = crd_annotations(cluster)
    assert sorted(before) == names
    assert all(annotations.get("helm.sh/resource-policy") == "keep" for annotations in before.values())

    cfg, release = crd_release.config, crd_release.name
    cfg.upgrade(CRD_CHART, release, {"keep": False}, namespace=crd_release.namespace, timeout=120)
    assert all("helm.sh/resource-policy" not in a for a in crd_annotations(cluster).values())
    cfg.upgrade(CRD_CHART, release, {"keep": True}, namespace=crd_release.namespace, timeout=120)

    group = unique("kept")
    resource_namespace = create_namespace(cluster, "res")
    try:
        group_manifest = {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "MCPGroup",
            "metadata": {"name": group, "namespace": resource_namespace},
            "spec": {},
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(group_manifest))
        cfg.uninstall(release)
        assert sorted(crd_annotations(cluster)) == names
        kept = cluster.kubectl("get", "mcpgroup", group, "-n", resource_namespace, "-o", "name")
        assert kept.stdout.strip() == f"mcpgroup.mcp-operator.dev/{group}"
    finally:
        delete_namespaces(cluster, resource_namespace)
