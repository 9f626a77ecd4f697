"""Fixtures of the end-to-end tier: a real node where pods run, images built here, both charts installed.

``hack/cluster up --node`` brings up (idempotently; built once and cached) a control plane with a real
node on the instance named by ``MCP_OPERATOR_E2E_CLUSTER`` (default "e2e"; never the integration
suite's instance, which creates thousands of objects). ``hack/cluster images`` builds the product image
and the MCP server images locally (cached) and imports them into the node. The session stops the node
afterwards unless it was already running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.chart.charts import CRD_CHART, OPERATOR_CHART, adopt_crds, helm_config, unique
from tests.support.cluster import HACK_CLUSTER, Cluster, cluster_env
from tests.support.e2e import IMAGES, OPERATOR_IMAGE, OperatorRelease, hack


@pytest.fixture(scope="session")
def node_cluster() -> Iterator[Cluster]:
    """A control plane with a real node (started if needed) and the test images imported into it."""
    instance = os.environ.get("MCP_OPERATOR_E2E_CLUSTER", "e2e")
    env = cluster_env(instance)
    status = subprocess.run(
        [sys.executable, str(HACK_CLUSTER), "status"], env=env, capture_output=True, text=True, check=False
    )
    was_running = status.returncode == 0 and "node kubelet: running" in status.stdout
    try:
        up = hack(env, "up", "--node")
        kubeconfig = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
        hack(env, "images", *IMAGES)
    except BaseException:
        if not was_running:  # leave nothing half-started behind
            subprocess.run([sys.executable, str(HACK_CLUSTER), "down"], env=env, check=False, timeout=300)
        raise
    yield Cluster(kubeconfig=Path(kubeconfig), instance=instance, env=env)
    if not was_running:
        subprocess.run([sys.executable, str(HACK_CLUSTER), "down"], env=env, check=False, timeout=300)


@pytest.fixture(scope="session")
def operator_release(node_cluster: Cluster) -> Iterator[OperatorRelease]:
    namespace = unique("mcp-system")
    node_cluster.kubectl("create", "namespace", namespace)
    name = "mcp-operator"
    values = {"image": {"repository": OPERATOR_IMAGE, "tag": "dev", "pullPolicy": "IfNotPresent"}}
    adopt_crds(node_cluster, "mcp-operator-crds", namespace)  # the CRD chart keeps its CRDs on uninstall
    with helm_config(node_cluster, namespace) as cfg:
        cfg.install(CRD_CHART, "mcp-operator-crds", namespace=namespace, timeout=120)
        cfg.install(OPERATOR_CHART, name, values, namespace=namespace, timeout=300)
        node_cluster.kubectl(
            "wait", "-n", namespace, "--for=condition=Available", "deployment", "--all", "--timeout=240s"
        )
        yield OperatorRelease(namespace, name, cfg)
        cfg.uninstall(name)
        cfg.uninstall("mcp-operator-crds")
    node_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def workload_namespace(node_cluster: Cluster, operator_release: OperatorRelease) -> Iterator[str]:
    """A fresh namespace for one test's MCP resources, deleted (with its pods) afterwards."""
    name = unique("e2e")
    node_cluster.kubectl("create", "namespace", name)
    yield name
    node_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
