"""Fixtures shared by every test group.

The control plane is real: ``hack/cluster`` builds (once, cached) and starts kube-apiserver + etcd on
127.0.0.1. Set ``MCP_OPERATOR_TEST_KUBECONFIG`` to run the integration tests against an existing
cluster instead, or ``MCP_OPERATOR_CLUSTER`` to use a differently named local instance (its own ports
and data), e.g. when two test runs share a machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from kubernetes_asyncio import client, config

from logs import configure_logging
from tests.support import tasks
from tests.support.cluster import HACK_CLUSTER, Cluster, cluster_env


@pytest.fixture(autouse=True)
def no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Fail an async test that leaves asyncio tasks running in its event loop, as kopf's suite does: a
    task nobody awaits hides its exceptions and keeps working after the test. Checked after the test's
    other fixtures are torn down; ``@pytest.mark.leaks_tasks("why")`` exempts a test with a reason."""
    marker = request.node.get_closest_marker("leaks_tasks")
    if marker is not None and not marker.args:
        pytest.fail("@pytest.mark.leaks_tasks needs the reason as its argument")
    if request.node.get_closest_marker("asyncio") is not None and marker is None:
        request.getfixturevalue("_tasks_left_behind")


@pytest.fixture
async def _tasks_left_behind() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    leaked = await tasks.leftover(before)
    if leaked:
        await tasks.cancel(leaked)
        described = "\n  ".join(tasks.describe(t) for t in leaked)
        pytest.fail(f"the test left {len(leaked)} asyncio task(s) running:\n  {described}", pytrace=False)


@pytest.fixture
def structured_logs() -> Iterator[None]:
    """Logs set up as every process sets them up (``logs.configure_logging``) with the root level kept, so
    ``caplog`` receives structlog's lines too, as records whose ``msg`` is the line's dict of keys."""
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    configure_logging("debug")
    root.setLevel(level)
    yield
    root.handlers[:] = [h for h in root.handlers if h in before or h.__class__.__module__ != "logs"]
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The session's control plane: an external one, or the local instance (started if needed)."""
    external = os.environ.get("MCP_OPERATOR_TEST_KUBECONFIG")
    if external:
        yield Cluster(kubeconfig=Path(external), instance=None)
        return
    instance = os.environ.get("MCP_OPERATOR_CLUSTER", "test")
    env = cluster_env(instance)
    was_running = (
        subprocess.run(
            [sys.executable, str(HACK_CLUSTER), "status"], env=env, capture_output=True, check=False
        ).returncode
        == 0
    )
    up = subprocess.run(
        [sys.executable, str(HACK_CLUSTER), "up"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        check=False,
        timeout=1800,
    )
    if up.returncode != 0:
        if not was_running:  # leave nothing half-started behind
            subprocess.run([sys.executable, str(HACK_CLUSTER), "down"], env=env, check=False, timeout=120)
        pytest.fail(f"hack/cluster up failed (exit {up.returncode}); its message is above")
    kubeconfig = Path(up.stdout.strip().splitlines()[-1].split("=", 1)[1])
    yield Cluster(kubeconfig=kubeconfig, instance=instance, env=env)
    if not was_running:
        subprocess.run([sys.executable, str(HACK_CLUSTER), "down"], env=env, check=False, timeout=120)


@pytest.fixture(scope="session")
def controller_manager(cluster: Cluster) -> Iterator[None]:
    """kube-controller-manager (garbage collector, namespace controller) for tests of cascading deletion."""
    if cluster.instance is None:
        yield  # an external cluster runs its own
        return
    cluster.hack("kcm", "start")
    yield
    cluster.hack("kcm", "stop", check=False)


@pytest.fixture
async def api_client(cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio client for test set-up and assertions (not the operator's own client)."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture
async def namespace(api_client: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    await core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"mcp-operator.dev/test": "true"}))
    )
    yield name
    try:
        await core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
