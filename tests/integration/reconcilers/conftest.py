"""Fixtures for the MCP reconcilers against the real kube-apiserver: a running operator and the test's client.

No kubelet or workload controllers run here, so pods never start. Tests that need a Ready MCPServer set
the Deployment / StatefulSet status themselves, the way the Deployment and StatefulSet controllers would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from tests.support.cluster import Cluster
from tests.support.kube import Api
from tests.support.operator import Operator, run_operator


@pytest.fixture
async def operator(mcp_crds: Cluster, namespace: str) -> AsyncIterator[Operator]:
    async with run_operator(mcp_crds.kubeconfig, namespace) as op:
        yield op


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str) -> Api:
    return Api(api_client, namespace)
