"""Fixtures for the fault scenarios: a control plane of the module's own, which its scenarios may break
(the scenarios themselves are in tests/support/faults.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, install_crds, own_instance


@pytest.fixture(scope="module")
def faults_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A control plane of this module's own, which its scenarios may kill and restart."""
    with own_instance(cluster, f"{cluster.instance}-faults") as own:
        yield install_crds(own)
