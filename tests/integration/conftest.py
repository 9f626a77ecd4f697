"""Everything under tests/integration talks to the real kube-apiserver."""

import pytest

from tests.support.cluster import Cluster, install_crds


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mcp_crds(cluster: Cluster) -> Cluster:
    """The project's generated CRDs, installed and Established."""
    return install_crds(cluster)
