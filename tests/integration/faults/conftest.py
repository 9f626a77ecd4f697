"""Fixtures for the fault scenarios: a control plane of the module's own, which its scenarios may break
(the scenarios themselves are in tests/support/faults.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import ROOT, Cluster, cluster_env


@pytest.fixture(scope="module")
def faults_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A control plane of this module's own, which its scenarios may kill and restart."""
    if cluster.instance is None:
        pytest.skip("kills a local control plane; MCP_OPERATOR_TEST_KUBECONFIG names an external one")
    instance = f"{cluster.instance}-faults-{uuid.uuid4().hex[:6]}"
    own = Cluster(kubeconfig=Path(), instance=instance, env=cluster_env(instance))
    try:
        up = own.hack("up")
        own.kubeconfig = Path(up.stdout.strip().splitlines()[-1].split("=", 1)[1])
        crds = ROOT / "manifests" / "crds"
        own.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
        own.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
        yield own
    finally:
        own.hack("down", "--wipe", check=False)
