"""Inbound OIDC on a real node: a proxy validates bearer tokens against an issuer whose discovery document
and JWKS are served by a pod in the cluster (an in-cluster identity provider, plain http, allowed with
``insecureAllowHTTP`` and ``jwksAllowPrivateIP``): no token and a token for another audience are refused
with 401, a token the issuer signed for this endpoint is served. In front of a remote server
(MCPRemoteProxy), the client's token is never what the remote server sees: the injected credential is."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.auth import Issuer
from tests.support.cluster import Cluster
from tests.support.e2e import (
    HEADERS_SERVER,
    TIME_SERVER_IMAGE,
    apply_resource,
    apply_server,
    python_pod,
    retry,
    service_base,
    text_of,
    wait_ready,
)

pytestmark = pytest.mark.e2e

AUDIENCE = "time-e2e"
# Serves $DOCUMENTS (a JSON object: path -> JSON document) on :8000.
DOCUMENT_SERVER = """
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
DOCUMENTS = json.loads(os.environ["DOCUMENTS"])
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(DOCUMENTS[self.path]).encode() if self.path in DOCUMENTS else b"{}"
        self.send_response(200 if self.path in DOCUMENTS else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "e2e", "version": "1"},
    },
}


def in_cluster_issuer(cluster: Cluster, namespace: str) -> Issuer:
    """A pod serving the issuer's discovery document and JWKS behind Service ``idp``."""
    issuer = Issuer(url=f"http://idp.{namespace}.svc.cluster.local:8000")
    documents = {
        "/.well-known/openid-configuration": {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"},
        "/jwks": {"keys": issuer.keys},
    }
    python_pod(cluster, namespace, "idp", DOCUMENT_SERVER, {"DOCUMENTS": json.dumps(documents)})
    return issuer


def oidc_config(issuer: Issuer) -> dict[str, Any]:
    """Tokens of ``issuer`` for AUDIENCE, its keys fetched in-cluster over plain http."""
    inline = {"issuer": issuer.url, "audience": AUDIENCE}
    return {"type": "inline", "inline": {**inline, "jwksAllowPrivateIP": True, "insecureAllowHTTP": True}}


async def initialize(client: httpx2.AsyncClient, url: str, token: str | None) -> httpx2.Response:
    headers: dict[str, Any] = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.post(url, json=INITIALIZE, headers=headers)


async def test_proxy_accepts_only_tokens_the_in_cluster_issuer_signed_for_it(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    issuer = in_cluster_issuer(node_cluster, ns)
    spec = {"image": TIME_SERVER_IMAGE, "transport": "stdio", "oidcConfig": oidc_config(issuer)}
    apply_server(node_cluster, ns, "guarded", spec)
    wait_ready(node_cluster, ns, "guarded")
    url = f"{service_base(node_cluster, ns, 'guarded')}/mcp"

    async with httpx2.AsyncClient(timeout=30) as client:
        refused = await initialize(client, url, None)
        assert refused.status_code == 401, refused.text
        assert "Bearer" in refused.headers.get("www-authenticate", ""), refused.headers
        other_audience = await initialize(client, url, issuer.mint(aud="another-server"))
        assert other_audience.status_code == 401, other_audience.text
        with anyio.fail_after(60):
            accepted = await initialize(client, url, issuer.mint(aud=AUDIENCE))
        assert accepted.status_code == 200, accepted.text
        assert '"serverInfo":{"name":"guarded"' in accepted.text, accepted.text  # the session is open


async def test_remote_proxy_checks_the_callers_token_and_sends_only_the_injected_credential_upstream(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    issuer = in_cluster_issuer(node_cluster, ns)
    remote_url = f"{python_pod(node_cluster, ns, 'headers', HEADERS_SERVER)}/mcp"
    node_cluster.kubectl("create", "secret", "generic", "-n", ns, "upstream", "--from-literal=token=up-1")
    injection = {"headerName": "X-Upstream-Token", "valueSecretRef": {"name": "upstream", "key": "token"}}
    auth = {"type": "headerInjection", "headerInjection": injection}
    apply_resource(node_cluster, "MCPExternalAuthConfig", ns, "upstream", auth)
    spec = {
        "remoteUrl": remote_url,
        "allowPrivateEndpoint": True,
        "externalAuthConfigRef": {"name": "upstream"},
        "oidcConfig": oidc_config(issuer),
    }
    apply_resource(node_cluster, "MCPRemoteProxy", ns, "remote", spec)
    wait_ready(node_cluster, ns, "remote", kind="mcpremoteproxy")
    url = f"{service_base(node_cluster, ns, 'remote')}/mcp"
    token = issuer.mint(aud=AUDIENCE)

    async with httpx2.AsyncClient(timeout=30) as http:
        assert (await initialize(http, url, None)).status_code == 401
        assert (await initialize(http, url, issuer.mint(aud="another-server"))).status_code == 401

    async def call_with_token() -> str:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http), mode="auto") as client,
        ):
            result = await client.call_tool("headers", {})
            assert not result.is_error, text_of(result)
            return text_of(result)

    with anyio.fail_after(60):
        seen = json.loads(await retry(call_with_token))
    assert seen["x-upstream-token"] == "up-1", seen
    assert token not in json.dumps(seen), seen  # the caller's token stays at the proxy
