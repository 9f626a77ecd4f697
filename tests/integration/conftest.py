"""Everything under tests/integration talks to the real kube-apiserver."""

import pytest

from tests.support.cluster import ROOT, Cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mcp_crds(cluster: Cluster) -> Cluster:
    """The project's generated CRDs, installed and Established."""
    crds = ROOT / "manifests" / "crds"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    return cluster
