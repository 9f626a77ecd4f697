"""An operator watching 50 namespaces converges with no write timing out.

It opens one watch per kind (about 14) per watched namespace: 700 watches, each holding its HTTP/1.1
connection while it is open. With one connection pool of 100 shared by watches and requests, the watches
took every connection and each LIST or write waited until it timed out (4 of 29 MCPServers handled in two
minutes with 8 namespaces and some churn). Watches now have a pool of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from kubernetes_asyncio import client

from tests.support.cluster import Cluster
from tests.support.kube import GROUP, VERSION, Api
from tests.support.mcpserver import PLURAL, server
from tests.support.operator_process import FAST_QPS, OperatorProcess
from tests.support.waiting import until

NAMESPACES = 50


async def test_fifty_namespaces_converge_with_zero_write_timeouts(
    mcp_crds: Cluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    prefix = f"many-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i:02d}" for i in range(NAMESPACES)]
    await asyncio.gather(
        *(core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=n))) for n in names)
    )
    operator = OperatorProcess(mcp_crds.kubeconfig, names[0], f"--namespace={','.join(names)}", *FAST_QPS)
    try:
        await asyncio.gather(*(Api(api_client, n).create(PLURAL, server("s")) for n in names))
        custom = client.CustomObjectsApi(api_client)

        async def converged() -> bool:
            listed = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            accepted = {
                item["metadata"]["namespace"]
                for item in listed["items"]
                if any(
                    c.get("type") == "Accepted" and c.get("status") == "True"
                    for c in (item.get("status") or {}).get("conditions") or []
                )
            }
            return set(names) <= accepted

        await until(converged, 180, f"an accepted MCPServer in each of the {NAMESPACES} namespaces")
        deployments = await client.AppsV1Api(api_client).list_deployment_for_all_namespaces()
        assert {d.metadata.namespace for d in deployments.items} >= set(names)
        assert operator.metric("rest_client_requests_total", code="<error>") == 0, operator.log_tail(20)
    finally:
        assert operator.stop() == 0
        for name in names:
            with contextlib.suppress(client.ApiException):
                await core.delete_namespace(name)
