"""An MCPRemoteProxy on a real node in front of an in-cluster streamable-HTTP MCP server (a private
endpoint, allowed with ``allowPrivateEndpoint``): calls through the proxy's Service reach the server with
the header an MCPExternalAuthConfig injects from a Secret, and with the plain header of ``headerForward``;
the client's own headers are not what the server sees."""

from __future__ import annotations

import json

import anyio
import pytest

from tests.support.cluster import Cluster
from tests.support.e2e import (
    HEADERS_SERVER,
    apply_resource,
    call_tool,
    python_pod,
    retry,
    service_base,
    wait_ready,
)

pytestmark = pytest.mark.e2e

API_KEY = "e2e-key-4c1f"


async def test_remote_proxy_injects_the_secrets_header_seen_by_the_in_cluster_server(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    remote_url = f"{python_pod(node_cluster, ns, 'headers', HEADERS_SERVER)}/mcp"
    node_cluster.kubectl(
        "create", "secret", "generic", "-n", ns, "remote-credentials", f"--from-literal=api-key={API_KEY}"
    )
    apply_resource(
        node_cluster,
        "MCPExternalAuthConfig",
        ns,
        "remote-key",
        {
            "type": "headerInjection",
            "headerInjection": {
                "headerName": "X-API-Key",
                "valueSecretRef": {"name": "remote-credentials", "key": "api-key"},
            },
        },
    )
    apply_resource(
        node_cluster,
        "MCPRemoteProxy",
        ns,
        "remote",
        {
            "remoteUrl": remote_url,
            "allowPrivateEndpoint": True,
            "headerForward": {"addPlaintextHeaders": {"X-Client": "mcp-operator-e2e"}},
            "externalAuthConfigRef": {"name": "remote-key"},
        },
    )
    wait_ready(node_cluster, ns, "remote", kind="mcpremoteproxy")
    url = f"{service_base(node_cluster, ns, 'remote')}/mcp"
    with anyio.fail_after(60):
        seen = json.loads(await retry(lambda: call_tool(url, "headers", {})))
    assert seen["x-api-key"] == API_KEY, seen
    assert seen["x-client"] == "mcp-operator-e2e", seen
    assert seen["host"] == f"headers.{ns}.svc.cluster.local:8000", seen  # the proxy's own request
