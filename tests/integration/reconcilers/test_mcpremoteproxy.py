"""MCPRemoteProxy on the real kube-apiserver: children, status, unsafe URLs, allowPrivateEndpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from api.proxy_config import ProxyConfig
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.resources import bearer_token, header_injection, remote_proxy, token_exchange
from tests.support.waiting import eventually

PLURAL = "mcpremoteproxies"
AUTH = "mcpexternalauthconfigs"
HASH = "mcp-operator.dev/config-hash"
SECRET_VALUE = "s3cr3t-value-never-in-a-configmap"


def remote(name: str, url: str = "https://mcp.example.com/api/mcp?tenant=a", **spec: Any) -> dict[str, Any]:
    return remote_proxy(name, url, **spec)


async def accepted(kube: Api, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        cond = condition(obj, "Accepted")
        gen = obj["metadata"]["generation"]
        return cond if cond and cond.get("observedGeneration") == gen else None

    result: dict[str, Any] = await eventually(check, what=f"Accepted of {name}")
    return result


async def test_children_status_and_secrets_as_env(operator: Operator, kube: Api) -> None:
    await kube.create_secret("upstream", {"token": SECRET_VALUE, "tenant": "acme"})
    await kube.create(AUTH, bearer_token("bearer", "upstream", "token"))
    await kube.create(
        "mcptoolconfigs",
        {"kind": "MCPToolConfig", "metadata": {"name": "only-echo"}, "spec": {"toolsFilter": ["echo"]}},
    )
    await kube.create(
        PLURAL,
        remote(
            "saas",
            externalAuthConfigRef={"name": "bearer"},
            toolConfigRef={"name": "only-echo"},
            headerForward={
                "addPlaintextHeaders": {"X-Client": "mcp-operator"},
                "addHeadersFromSecret": [
                    {"headerName": "X-Tenant", "valueSecretRef": {"name": "upstream", "key": "tenant"}}
                ],
            },
            oidcConfig={"inline": {"issuer": "https://idp.example.com", "audience": "saas-proxy"}},
            audit={"enabled": True},
        ),
    )
    cm = await eventually(lambda: kube.child("ConfigMap", "saas-proxy"), what="proxy ConfigMap")
    text = cm["data"]["proxy.json"]
    assert SECRET_VALUE not in text and "acme" not in text
    config = json.loads(text)
    backend = config["backend"]
    assert backend["url"] == "https://mcp.example.com/api/mcp?tenant=a"
    assert backend["type"] == "http" and backend["allowPrivateEndpoint"] is False
    assert backend["auth"]["type"] == "bearerToken"
    token_env = backend["auth"]["tokenSecretRef"]["env"]
    tenant_env = backend["headerForward"]["addHeadersFromSecret"][0]["valueSecretRef"]["env"]
    assert backend["headerForward"]["addPlaintextHeaders"] == {"X-Client": "mcp-operator"}
    assert config["toolFilter"]["allow"] == ["echo"]
    assert (
        config["oidc"]["issuer"] == "https://idp.example.com" and config["oidc"]["audience"] == "saas-proxy"
    )
    loaded = ProxyConfig.model_validate(config)  # what the proxy will load
    assert loaded.audit.enabled is True and loaded.port == 8080

    deployment = await eventually(lambda: kube.child("Deployment", "saas"), what="proxy Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
    assert env[token_env] == {"name": "upstream", "key": "token"}
    assert env[tenant_env] == {"name": "upstream", "key": "tenant"}
    assert container["args"] == ["proxy", "--config", "/etc/mcp-operator/proxy.json", "--host", "0.0.0.0"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["serviceAccountName"] == "saas-proxy"
    assert pod["metadata"]["annotations"][HASH]
    account = await kube.wait_child("ServiceAccount", "saas-proxy")
    assert account["automountServiceAccountToken"] is False
    service = await kube.wait_child("Service", "saas")  # applied just after the Deployment
    assert service["spec"]["ports"][0]["port"] == 8080
    owner = (await kube.get(PLURAL, "saas"))["metadata"]["uid"]
    for obj in (cm, deployment, account, service):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == owner

    async def unavailable() -> dict[str, Any] | None:
        current = await kube.get(PLURAL, "saas")
        return current if (condition(current, "Ready") or {}).get("reason") == "Unavailable" else None

    obj = await eventually(unavailable, what="Ready=False (Unavailable) before the pods are ready")
    assert obj["status"]["phase"] == "Pending"
    await kube.mark_ready("Deployment", "saas")

    async def ready() -> dict[str, Any] | None:
        current = await kube.get(PLURAL, "saas")
        return current if (condition(current, "Ready") or {}).get("status") == "True" else None

    obj = await eventually(ready, what="Ready=True")
    status = obj["status"]
    assert status["phase"] == "Ready" and status["readyReplicas"] == 1
    assert status["url"] == f"http://saas.{kube.ns}.svc.cluster.local:8080/mcp"
    assert condition(obj, "ResolvedRefs")["status"] == "True"  # type: ignore[index]
    auth = await eventually(lambda: _with_hash(kube, "bearer"), what="MCPExternalAuthConfig configHash")
    assert status["externalAuthConfigHash"] == auth["status"]["configHash"]
    tools = await eventually(lambda: _with_hash(kube, "only-echo", "mcptoolconfigs"), what="tool configHash")
    assert status["toolConfigHash"] == tools["status"]["configHash"]


async def _with_hash(kube: Api, name: str, plural: str = AUTH) -> dict[str, Any] | None:
    obj = await kube.get(plural, name)
    return obj if (obj.get("status") or {}).get("configHash") else None


async def test_missing_auth_config_and_its_secret_then_created(operator: Operator, kube: Api) -> None:
    await kube.create(PLURAL, remote("late", externalAuthConfigRef={"name": "later"}))

    async def refs(reason: str) -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, "late")
        cond = condition(obj, "ResolvedRefs") or {}
        return obj if cond.get("reason") == reason else None

    obj = await eventually(lambda: refs("ExternalAuthConfigNotFound"), what="ExternalAuthConfigNotFound")
    assert obj["status"]["phase"] == "Pending" and "later" in condition(obj, "ResolvedRefs")["message"]  # type: ignore[index]
    assert await kube.child("Deployment", "late") is None
    await kube.create(AUTH, header_injection("later", "X-API-Key", "api-key", "k"))
    obj = await eventually(lambda: refs("SecretNotFound"), what="SecretNotFound through the auth config")
    assert "api-key" in condition(obj, "ResolvedRefs")["message"]  # type: ignore[index]
    await kube.create_secret("api-key", {"k": "v"})
    await eventually(lambda: refs("ResolvedRefs"), what="references resolved after the Secret appears")
    assert await eventually(lambda: kube.child("Deployment", "late"), what="Deployment once resolved")


SCHEMA_ACCEPTS_REFUSED_ALWAYS = {
    "loopback-v4": "http://127.0.0.1:8080/mcp",
    "loopback-v6": "http://[::1]:8080/mcp",
    "metadata": "http://169.254.169.254/latest/meta-data",
    "unspecified": "http://0.0.0.0/mcp",
    "credentials": "http://user:pass@mcp.example.com/mcp",
    "empty-host": "http://:8080/mcp",
    "v4-mapped-loopback": "http://[::ffff:127.0.0.1]/mcp",
    "link-local-v6": "http://[fe80::1]/mcp",
    "bad-host": "http://mcp_example%/mcp",
}
SCHEMA_ACCEPTS_PRIVATE = {
    "rfc1918-10": "http://10.0.0.5/mcp",
    "rfc1918-172": "http://172.16.0.1/mcp",
    "rfc1918-192": "http://192.168.1.1/mcp",
    "ula-v6": "http://[fd00::1]/mcp",
    "in-cluster": "http://mcp.tools.svc.cluster.local:8080/mcp",
}
SCHEMA_REFUSES = {"ftp": "ftp://mcp.example.com/mcp", "not-a-url": "not a url", "no-host": "http:///mcp"}


async def test_unsafe_urls_are_not_accepted_and_private_ones_need_the_opt_in(
    operator: Operator, kube: Api
) -> None:
    cases = {**SCHEMA_ACCEPTS_REFUSED_ALWAYS, **SCHEMA_ACCEPTS_PRIVATE}
    for name, url in cases.items():
        await kube.create(PLURAL, remote(name, url))
    for name in cases:
        cond = await accepted(kube, name)
        assert cond["status"] == "False" and cond["reason"] == "InvalidSpec", (name, cond)
        assert cond["message"].startswith("spec.remoteUrl: "), (name, cond["message"])
        obj = await kube.get(PLURAL, name)
        assert obj["status"]["phase"] == "Failed"
        assert await kube.child("Deployment", name) is None, name
    messages = {name: (await accepted(kube, name))["message"] for name in cases}
    assert "loopback" in messages["loopback-v4"] and "loopback" in messages["loopback-v6"]
    assert "cloud metadata" in messages["metadata"] and "unspecified" in messages["unspecified"]
    assert "credentials" in messages["credentials"] and "no host" in messages["empty-host"]
    for name in SCHEMA_ACCEPTS_PRIVATE:
        assert "allowPrivateEndpoint: true" in messages[name], messages[name]

    for name in cases:
        await kube.patch(PLURAL, name, {"spec": {"allowPrivateEndpoint": True}})
    for name in SCHEMA_ACCEPTS_PRIVATE:
        cond = await accepted(kube, name)
        assert cond["status"] == "True", (name, cond)
        cm = await eventually(lambda n=name: kube.child("ConfigMap", f"{n}-proxy"), what=f"{name} ConfigMap")
        assert json.loads(cm["data"]["proxy.json"])["backend"].get("allowPrivateEndpoint", True) is True
    for name in SCHEMA_ACCEPTS_REFUSED_ALWAYS:
        cond = await accepted(kube, name)
        assert cond["status"] == "False", (name, cond)

    for name, url in SCHEMA_REFUSES.items():
        with pytest.raises(client.ApiException) as info:
            await kube.create(PLURAL, remote(name, url))
        assert info.value.status == 422 and "spec.remoteUrl" in info.value.body, (name, info.value.body)


async def test_spec_change_rolls_the_proxy_and_serviceaccount_follows(operator: Operator, kube: Api) -> None:
    await kube.create(PLURAL, remote("roll", replicas=2))
    first = await eventually(lambda: kube.child("Deployment", "roll"), what="Deployment")
    assert first["spec"]["replicas"] == 2
    digest = first["spec"]["template"]["metadata"]["annotations"][HASH]
    await kube.patch(
        PLURAL, "roll", {"spec": {"remoteUrl": "https://other.example.com/mcp", "serviceAccount": "mine"}}
    )

    dep = await kube.wait_rolled("roll", digest)
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    await eventually(
        lambda: _absent(kube, "ServiceAccount", "roll-proxy"), what="the operator's ServiceAccount removed"
    )


async def _absent(kube: Api, kind: str, name: str) -> bool:
    return await kube.child(kind, name) is None


async def test_token_exchange_needs_inbound_oidc_then_renders(operator: Operator, kube: Api) -> None:
    await kube.create_secret("exchange", {"client-secret": SECRET_VALUE})
    await kube.create(
        AUTH, token_exchange("exchange", "exchange", "client-secret", "https://mcp.example.com")
    )
    await kube.create(PLURAL, remote("te", externalAuthConfigRef={"name": "exchange"}))

    async def needs_inbound() -> dict[str, Any] | None:
        cond = condition(await kube.get(PLURAL, "te"), "ResolvedRefs") or {}
        return cond if cond.get("reason") == "InboundAuthRequired" else None

    cond = await eventually(needs_inbound, what="InboundAuthRequired without oidcConfig")
    assert "spec.oidcConfig" in cond["message"] and await kube.child("Deployment", "te") is None
    oidc = {"inline": {"issuer": "https://idp.example.com", "audience": "te"}}
    await kube.patch(PLURAL, "te", {"spec": {"oidcConfig": oidc}})
    cm = await eventually(lambda: kube.child("ConfigMap", "te-proxy"), what="proxy ConfigMap")
    assert SECRET_VALUE not in cm["data"]["proxy.json"]
    loaded = ProxyConfig.model_validate_json(cm["data"]["proxy.json"])
    auth = loaded.backend.auth  # type: ignore[union-attr]
    assert auth is not None and auth.type == "tokenExchange" and auth.audience == "https://mcp.example.com"
    deployment = await eventually(lambda: kube.child("Deployment", "te"), what="proxy Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "exchange", "key": "client-secret"} in [e["valueFrom"]["secretKeyRef"] for e in env]


async def test_invalid_tool_config_is_reported_on_both_sides(operator: Operator, kube: Api) -> None:
    await kube.create(
        "mcptoolconfigs",
        {
            "kind": "MCPToolConfig",
            "metadata": {"name": "clash"},
            "spec": {"toolsOverride": {"a": {"name": "same"}, "b": {"name": "same"}}},
        },
    )
    await kube.create(PLURAL, remote("filtered", toolConfigRef={"name": "clash"}))

    async def tool_config_invalid() -> dict[str, Any] | None:
        obj = await kube.get("mcptoolconfigs", "clash")
        cond = condition(obj, "Accepted") or {}
        return cond if cond.get("status") == "False" else None

    cond = await eventually(tool_config_invalid, what="MCPToolConfig Accepted=False")
    assert "spec.toolsOverride[a].name" in cond["message"] and "distinct names" in cond["message"]

    refs = await kube.wait_condition(PLURAL, "filtered", "ResolvedRefs", reason="ToolConfigInvalid")
    assert "clash" in refs["message"]
    assert await kube.child("Deployment", "filtered") is None
    await kube.patch("mcptoolconfigs", "clash", {"spec": {"toolsOverride": {"b": {"name": "other"}}}})
    await eventually(
        lambda: kube.child("Deployment", "filtered"), what="rendered once the tool config is fixed"
    )


async def test_ingress_path_settings_reach_the_proxy_and_roll_it(operator: Operator, kube: Api) -> None:
    await kube.create(PLURAL, remote("behind-ingress", endpointPrefix="/saas", trustProxyHeaders=True))
    assert (await accepted(kube, "behind-ingress"))["status"] == "True"
    cm = await eventually(lambda: kube.child("ConfigMap", "behind-ingress-proxy"), what="proxy ConfigMap")
    loaded = ProxyConfig.model_validate_json(cm["data"]["proxy.json"])
    assert (loaded.endpoint_prefix, loaded.trust_proxy_headers) == ("/saas", True)
    first = await kube.wait_child("Deployment", "behind-ingress")
    await kube.patch(PLURAL, "behind-ingress", {"spec": {"endpointPrefix": "/tenant-a"}})
    await kube.wait_rolled("behind-ingress", first["spec"]["template"]["metadata"]["annotations"][HASH])

    with pytest.raises(client.ApiException) as info:
        await kube.create(PLURAL, remote("bad-prefix", endpointPrefix="/a?b"))
    assert info.value.status == 422 and "spec.endpointPrefix" in info.value.body


async def test_session_affinity_is_set_on_the_service_and_reset_when_removed(
    operator: Operator, kube: Api
) -> None:
    await kube.create(PLURAL, remote("sticky", sessionAffinity="ClientIP"))

    async def affinity(expected: str) -> dict[str, Any] | None:
        service = await kube.child("Service", "sticky")
        return service if service and service["spec"].get("sessionAffinity") == expected else None

    await eventually(lambda: affinity("ClientIP"), what="the Service with ClientIP affinity")
    await kube.patch(PLURAL, "sticky", {"spec": {"sessionAffinity": None}})
    await eventually(lambda: affinity("None"), what="the Service back to no affinity")
