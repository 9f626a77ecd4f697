"""An MCPServer's outbound credential (spec.externalAuthConfigRef) on the real kube-apiserver.

For sse / streamable-http servers the proxy authenticates to the server with the referenced
MCPExternalAuthConfig: the ConfigMap names environment variables, the Deployment fills them from the
Secret, and the secret value never reaches the ConfigMap. A stdio server has no HTTP hop, so the
reference is refused with a message naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support import resources
from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.waiting import eventually

AUTH = "mcpexternalauthconfigs"
PLURAL = "mcpservers"
HASH = "mcp-operator.dev/config-hash"
TOKEN = "t0ken-only-in-the-secret"


def header_injection(name: str, header: str, secret: str = "upstream") -> dict[str, Any]:
    return resources.header_injection(name, header, secret, "token")


async def make_secret(kube: Api, name: str = "upstream") -> None:
    await kube.create_secret(name, {"token": TOKEN})


async def refs(kube: Api, name: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        cond = condition(obj, "ResolvedRefs") or {}
        current = cond.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if current and cond.get("status") == status else None

    found: dict[str, Any] = await eventually(check, what=f"ResolvedRefs={status} on {name}")
    return found


async def test_http_server_gets_the_credential_as_env_and_rolls_when_it_changes(
    operator: Operator, kube: Api
) -> None:
    await make_secret(kube)
    await kube.create(AUTH, header_injection("key", "X-API-Key"))
    await kube.create(
        PLURAL, server("api", transport="streamable-http", externalAuthConfigRef={"name": "key"})
    )
    cm = await kube.wait_child("ConfigMap", "api-proxy")
    text = cm["data"]["proxy.json"]
    assert TOKEN not in text, "a secret value reached the ConfigMap"
    auth = json.loads(text)["backend"]["auth"]
    assert auth["type"] == "headerInjection" and auth["headerName"] == "X-API-Key"
    variable = auth["valueSecretRef"]["env"]

    deployment = await kube.wait_child("Deployment", "api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container.get("env", [])}
    assert env[variable] == {"name": "upstream", "key": "token"}
    digest = deployment["spec"]["template"]["metadata"]["annotations"][HASH]

    obj = await refs(kube, "api", "True")

    async def hashes_agree() -> bool:
        mine = (await kube.get(PLURAL, "api")).get("status", {}).get("externalAuthConfigHash")
        theirs = (await kube.get(AUTH, "key")).get("status", {}).get("configHash")
        return mine is not None and mine == theirs

    await eventually(hashes_agree, what="status.externalAuthConfigHash equals the config's configHash")
    assert (condition(obj, "Accepted") or {}).get("status") == "True"

    # A changed credential config re-renders the proxy and rolls it; the server StatefulSet stays.
    sts = (await kube.wait_child("StatefulSet", "api-server"))["spec"]["template"]
    await kube.patch(AUTH, "key", {"spec": {"headerInjection": {"headerName": "X-Upstream-Key"}}})

    await kube.wait_rolled("api", digest)
    cm = await kube.wait_child("ConfigMap", "api-proxy")
    assert json.loads(cm["data"]["proxy.json"])["backend"]["auth"]["headerName"] == "X-Upstream-Key"
    assert (await kube.wait_child("StatefulSet", "api-server"))["spec"]["template"] == sts


async def test_missing_secret_blocks_until_it_exists(operator: Operator, kube: Api) -> None:
    await kube.create(AUTH, header_injection("later", "X-API-Key", secret="later-secret"))
    await kube.create(PLURAL, server("waits", transport="sse", externalAuthConfigRef={"name": "later"}))
    # The config may reach the operator's cache after the server: its watch re-enqueues the server.
    cond = await kube.wait_condition(PLURAL, "waits", "ResolvedRefs", status="False", reason="SecretNotFound")
    assert "later-secret" in cond["message"], cond
    assert (await kube.get(PLURAL, "waits"))["status"]["phase"] == "Pending"
    assert await kube.child("Deployment", "waits") is None, "a proxy without its credential was deployed"

    await make_secret(kube, "later-secret")  # the Secret event re-enqueues the MCPServer
    await refs(kube, "waits", "True")
    deployment = await kube.wait_child("Deployment", "waits")
    names = [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])]
    assert any(n.startswith("SECRET_LATER_SECRET_TOKEN") for n in names), names


async def test_token_exchange_needs_inbound_auth(operator: Operator, kube: Api) -> None:
    await make_secret(kube)
    await kube.create(
        AUTH, resources.token_exchange("exchange", "upstream", "token", "https://api.example.com")
    )
    await kube.create(
        PLURAL, server("exch", transport="streamable-http", externalAuthConfigRef={"name": "exchange"})
    )
    # The config may reach the operator's cache after the server: its watch re-enqueues the server.
    cond = await kube.wait_condition(
        PLURAL, "exch", "ResolvedRefs", status="False", reason="InboundAuthRequired"
    )
    assert "spec.oidcConfig" in cond["message"], cond


async def test_stdio_server_refuses_the_reference_naming_the_field(operator: Operator, kube: Api) -> None:
    await make_secret(kube)
    await kube.create(AUTH, header_injection("key", "X-API-Key"))
    await kube.create(PLURAL, server("local", externalAuthConfigRef={"name": "key"}))

    cond = await kube.wait_condition(PLURAL, "local", "Accepted", status="False")
    assert "spec.externalAuthConfigRef" in cond["message"] and "streamable-http" in cond["message"], cond
    assert await kube.child("Deployment", "local") is None
