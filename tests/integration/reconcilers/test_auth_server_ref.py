"""``spec.authServerRef`` (an MCPExternalAuthConfig of type ``embeddedAuthServer``) on the real API server.

The proxy's config carries the authorization server with every Secret key as an environment variable
the kubelet fills (no value in the ConfigMap); a missing reference, a config of another type, or a
missing Secret is ``ResolvedRefs=False`` naming the field; a changed config rolls the proxy.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support import resources
from tests.support.kube import Api
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.waiting import eventually

AUTH = "mcpexternalauthconfigs"
SERVERS = "mcpservers"
PROXIES = "mcpremoteproxies"
SECRET_VALUE = "client-secret-only-in-the-secret"


def embedded(name: str, issuer: str = "https://auth.example.com", secret: str = "idp") -> dict[str, Any]:
    return {
        "kind": "MCPExternalAuthConfig",
        "metadata": {"name": name},
        "spec": {
            "type": "embeddedAuthServer",
            "embeddedAuthServer": {
                "issuer": issuer,
                "signingKeySecretRefs": [{"name": secret, "key": "signing-key"}],
                "hmacSecretRefs": [{"name": secret, "key": "hmac"}],
                "upstreamProviders": [
                    {
                        "name": "corp",
                        "type": "oidc",
                        "oidcConfig": {
                            "issuerUrl": "https://idp.example.com",
                            "clientId": "mcp",
                            "clientSecretRef": {"name": secret, "key": "client-secret"},
                        },
                    }
                ],
            },
        },
    }


async def make_secret(kube: Api, name: str = "idp") -> None:
    await kube.create_secret(name, {"signing-key": "pem", "hmac": "h" * 40, "client-secret": SECRET_VALUE})


async def test_an_http_server_runs_the_embedded_server_with_secrets_as_env_and_rolls_on_change(
    operator: Operator, kube: Api
) -> None:
    await make_secret(kube)
    await kube.create(AUTH, embedded("signin"))
    await kube.create(SERVERS, server("api", transport="streamable-http", authServerRef={"name": "signin"}))
    cm = await kube.wait_child("ConfigMap", "api-proxy")
    text = cm["data"]["proxy.json"]
    assert SECRET_VALUE not in text, "a secret value reached the ConfigMap"
    config = json.loads(text)["authServer"]
    assert config["issuer"] == "https://auth.example.com"
    assert config["resourceUrl"] == "https://auth.example.com/mcp"
    assert config["upstream"]["issuerUrl"] == "https://idp.example.com"
    deployment = await kube.wait_child("Deployment", "api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container.get("env", [])}
    assert env[config["upstream"]["clientSecretRef"]["env"]] == {"name": "idp", "key": "client-secret"}
    assert env[config["signingKeys"][0]["env"]] == {"name": "idp", "key": "signing-key"}
    assert all("value" not in e for e in container.get("env", []) if e["name"].startswith("SECRET_"))
    await kube.wait_condition(SERVERS, "api", "ResolvedRefs", status="True")
    await kube.wait_condition(AUTH, "signin", "Accepted", status="True")

    async def hashes_agree() -> bool:
        mine = (await kube.get(SERVERS, "api")).get("status", {}).get("authServerConfigHash")
        theirs = (await kube.get(AUTH, "signin")).get("status", {}).get("configHash")
        return mine is not None and mine == theirs

    await eventually(hashes_agree, what="status.authServerConfigHash equals the config's configHash")

    digest = deployment["spec"]["template"]["metadata"]["annotations"]["mcp-operator.dev/config-hash"]
    await kube.patch(
        AUTH, "signin", {"spec": {"embeddedAuthServer": {"issuer": "https://login.example.com"}}}
    )
    await kube.wait_rolled("api", digest)
    cm = await kube.wait_child("ConfigMap", "api-proxy")
    assert json.loads(cm["data"]["proxy.json"])["authServer"]["issuer"] == "https://login.example.com"


def remote_proxy(name: str, auth_server: str) -> dict[str, Any]:
    spec = {"remoteUrl": "https://mcp.example.com/mcp", "authServerRef": {"name": auth_server}}
    return {"kind": "MCPRemoteProxy", "metadata": {"name": name}, "spec": spec}


async def test_unresolved_references_are_reported_naming_the_field(operator: Operator, kube: Api) -> None:
    await kube.create(PROXIES, remote_proxy("lost", "nope"))
    cond = await kube.wait_condition(
        PROXIES, "lost", "ResolvedRefs", status="False", reason="AuthServerConfigNotFound"
    )
    assert "MCPExternalAuthConfig 'nope' does not exist" in cond["message"], cond
    assert await kube.child("Deployment", "lost") is None

    await kube.create(AUTH, resources.header_injection("key", "X-API-Key", "s", "token"))
    await kube.create(PROXIES, remote_proxy("wrong", "key"))
    cond = await kube.wait_condition(
        PROXIES, "wrong", "ResolvedRefs", status="False", reason="AuthServerConfigInvalid"
    )
    assert "spec.authServerRef needs type embeddedAuthServer" in cond["message"], cond

    await kube.create(AUTH, embedded("nosecret", secret="absent"))
    await kube.create(PROXIES, remote_proxy("waits", "nosecret"))
    cond = await kube.wait_condition(
        PROXIES, "waits", "ResolvedRefs", status="False", reason="SecretNotFound"
    )
    assert "spec.embeddedAuthServer.signingKeySecretRefs[0]" in cond["message"], cond
    await make_secret(kube, "absent")  # the Secret appearing resolves it
    await kube.wait_condition(PROXIES, "waits", "ResolvedRefs", status="True")
    await kube.wait_child("Deployment", "waits")


async def test_a_config_the_proxy_would_refuse_is_not_accepted(operator: Operator, kube: Api) -> None:
    await kube.create(AUTH, embedded("plain", issuer="http://auth.example.com"))
    cond = await kube.wait_condition(AUTH, "plain", "Accepted", status="False")
    assert cond["message"].startswith("spec.embeddedAuthServer:") and "must use https" in cond["message"], (
        cond
    )
