"""Fixtures of the end-to-end tier: a real node where pods run, images built here, both charts installed.

``hack/cluster up --node`` brings up (idempotently; built once and cached) a control plane with a real
node on the instance named by ``MCP_OPERATOR_E2E_CLUSTER`` (default "e2e"; never the integration
suite's instance, which creates thousands of objects). ``hack/cluster images`` builds the product image
and the MCP server images locally (cached) and imports them into the node. The session stops the node
afterwards unless it was already running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import helm_python as helm
import pytest

from tests.conftest import HACK_CLUSTER, Cluster, cluster_env
from tests.fixtures.chart.charts import CRD_CHART, OPERATOR_CHART, adopt_crds, helm_config, unique

IMAGE_REGISTRY = "localhost/mcp-operator"
OPERATOR_IMAGE = f"{IMAGE_REGISTRY}/mcp-operator"
TIME_SERVER_IMAGE = f"{IMAGE_REGISTRY}/mcp-server-time:dev"
FIXTURE_SERVER_IMAGE = f"{IMAGE_REGISTRY}/mcp-fixture-server:dev"
EVERYTHING_IMAGE = f"{IMAGE_REGISTRY}/server-everything:dev"
BASE_IMAGE = f"{IMAGE_REGISTRY}/debian-python:bookworm"  # runs as root
IMAGES = ["mcp-operator", "mcp-server-time", "mcp-fixture-server", "server-everything", "debian-python"]
T = TypeVar("T")


def hack(env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """``hack/cluster ARGS`` with its progress on the terminal; fails the session with its last line."""
    result = subprocess.run(
        [sys.executable, str(HACK_CLUSTER), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/cluster {' '.join(args)} failed (exit {result.returncode}); its message is above")
    return result


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
    from pathlib import Path  # noqa: PLC0415

    yield Cluster(kubeconfig=Path(kubeconfig), instance=instance, env=env)
    if not was_running:
        subprocess.run([sys.executable, str(HACK_CLUSTER), "down"], env=env, check=False, timeout=300)


def eventually(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns a value (not None/False); fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        if last is not None and last is not False and not isinstance(last, AssertionError):
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    pytest.fail(f"{what}: not reached after {timeout:.0f} s (last: {last!r})")


def kubectl_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl(*args, "-o", "json").stdout))


@dataclass
class OperatorRelease:
    """Both charts installed with the locally built image, the operator pod Ready."""

    namespace: str
    name: str
    config: helm.Config


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
