"""The gateway's in-cluster side against the test API server: its target (admin credentials of the test
cluster) and what the operator applies to the same VirtualMCPServer status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from gateway.vmcp.status_writer import StatusTarget
from tests.support.cluster import Cluster
from tests.support.kube import GROUP, VERSION

PLURAL = "virtualmcpservers"


def target_for(cluster: Cluster, namespace: str, tmp_path: Path) -> StatusTarget:
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    token = tmp_path / "token"
    token.write_text(kubeconfig["users"][0]["user"]["token"])
    server = kubeconfig["clusters"][0]["cluster"]
    return StatusTarget("team", namespace, server["server"], token, Path(server["certificate-authority"]))


async def operator_apply(api: client.ApiClient, namespace: str, status: dict[str, Any]) -> None:
    """What the operator sends for the same object (its own field manager, no health keys)."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualMCPServer",
        "metadata": {"name": "team", "namespace": namespace},
        "status": status,
    }
    await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "team",
        body,
        field_manager="mcp-operator",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
