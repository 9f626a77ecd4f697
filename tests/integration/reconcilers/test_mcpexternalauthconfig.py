"""MCPExternalAuthConfig on the real kube-apiserver: validity, hash, consumers re-render, deletion guard."""

from __future__ import annotations

import json
from typing import Any

from tests.support import resources
from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.resources import TOKEN_URL, bearer_token, remote_proxy
from tests.support.waiting import eventually

AUTH = "mcpexternalauthconfigs"
REMOTE = "mcpremoteproxies"
FINALIZER = "mcp-operator.dev/in-use"
HASH = "mcp-operator.dev/config-hash"


def client_credentials(name: str, token_url: str = TOKEN_URL, **extra: Any) -> dict[str, Any]:
    return resources.client_credentials(name, "idp", "secret", token_url, **extra)


async def make_secret(kube: Api) -> None:
    await kube.create_secret("idp", {"secret": "client-secret"})


async def status_of(kube: Api, name: str, type_: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(AUTH, name)
        return obj if (condition(obj, type_) or {}).get("status") == wanted else None

    result: dict[str, Any] = await eventually(check, what=f"{type_}={wanted} on {name}")
    return result


async def test_valid_config_hash_and_kubectl_column(operator: Operator, kube: Api, mcp_crds: Cluster) -> None:
    await make_secret(kube)
    await kube.create(AUTH, client_credentials("cc", scopes=["mcp.read"], audience="https://mcp.example.com"))
    await status_of(kube, "cc", "Accepted", "True")
    # The Secret can reach the operator's cache after the config (ResolvedRefs=False first).
    obj = await status_of(kube, "cc", "ResolvedRefs", "True")
    assert len(obj["status"]["configHash"]) == 16 and obj["status"]["observedGeneration"] == 1
    assert (condition(obj, "InUse") or {})["status"] == "False"
    assert FINALIZER not in (obj["metadata"].get("finalizers") or [])
    table = mcp_crds.kubectl("get", AUTH, "cc", "-n", kube.ns).stdout
    assert (
        table.splitlines()[0].split()[:2] == ["NAME", "VALID"] and table.splitlines()[1].split()[1] == "True"
    )

    first = obj["status"]["configHash"]
    await kube.patch(AUTH, "cc", {"spec": {"oauth2ClientCredentials": {"scopes": ["mcp.write"]}}})

    async def rehashed() -> dict[str, Any] | None:
        current = await kube.get(AUTH, "cc")
        return current if current["status"].get("configHash") not in (None, first) else None

    await eventually(rehashed, what="a new configHash after a spec change")


async def test_invalid_configs_are_not_accepted_with_the_field_named(operator: Operator, kube: Api) -> None:
    await kube.create(AUTH, client_credentials("plain-http", token_url="http://idp.example.com/token"))
    obj = await status_of(kube, "plain-http", "Accepted", "False")
    message = (condition(obj, "Accepted") or {})["message"]
    assert message.startswith("spec.oauth2ClientCredentials: ") and "https" in message, message
    assert "configHash" not in obj["status"]
    two_blocks = bearer_token("two-blocks", "idp", "secret")
    two_blocks["spec"]["headerInjection"] = {
        "headerName": "X-Key",
        "valueSecretRef": {"name": "idp", "key": "secret"},
    }
    await kube.create(AUTH, two_blocks)
    obj = await status_of(kube, "two-blocks", "Accepted", "False")
    assert (
        "spec.headerInjection: is ignored with type bearerToken"
        in (condition(obj, "Accepted") or {})["message"]
    )

    # A proxy using the invalid config waits, and says which config to fix.
    await kube.create(REMOTE, remote_proxy("user", externalAuthConfigRef={"name": "plain-http"}))

    cond = await kube.wait_condition(REMOTE, "user", "ResolvedRefs", reason="ExternalAuthConfigInvalid")
    assert "plain-http" in cond["message"]
    assert await kube.child("Deployment", "user") is None


async def test_consumer_rerenders_and_rolls_when_the_config_changes(operator: Operator, kube: Api) -> None:
    await make_secret(kube)
    await kube.create(AUTH, client_credentials("cc"))
    await kube.create(REMOTE, remote_proxy("saas", externalAuthConfigRef={"name": "cc"}))
    dep = await eventually(lambda: kube.child("Deployment", "saas"), what="the proxy Deployment")
    digest = dep["spec"]["template"]["metadata"]["annotations"][HASH]
    await kube.mark_ready("Deployment", "saas")
    await kube.patch(
        AUTH,
        "cc",
        {"spec": {"oauth2ClientCredentials": {"audience": "https://api.example.com", "scopes": ["a"]}}},
    )

    await kube.wait_rolled("saas", digest)
    cm = await kube.child("ConfigMap", "saas-proxy")
    auth = json.loads(cm["data"]["proxy.json"])["backend"]["auth"]  # type: ignore[index]
    assert auth["audience"] == "https://api.example.com" and auth["scopes"] == ["a"]

    async def hashes_agree() -> bool:
        proxy = await kube.get(REMOTE, "saas")
        config = await kube.get(AUTH, "cc")
        return bool(
            proxy["status"].get("externalAuthConfigHash") == config["status"].get("configHash") is not None
        )

    await eventually(hashes_agree, what="status.externalAuthConfigHash equals the config's configHash")


async def test_deletion_is_blocked_while_referenced(operator: Operator, kube: Api) -> None:
    await make_secret(kube)
    await kube.create(AUTH, client_credentials("shared"))
    await kube.create(REMOTE, remote_proxy("a", externalAuthConfigRef={"name": "shared"}))
    await kube.create(
        "mcpservers", server("b", transport="streamable-http", externalAuthConfigRef={"name": "shared"})
    )

    async def guarded() -> dict[str, Any] | None:
        obj = await kube.get(AUTH, "shared")
        in_use = condition(obj, "InUse") or {}
        has = FINALIZER in (obj["metadata"].get("finalizers") or [])
        return obj if has and in_use.get("message") == "used by MCPRemoteProxy/a, MCPServer/b" else None

    await eventually(guarded, what="the in-use finalizer and InUse naming both referrers")
    await kube.delete(AUTH, "shared")
    obj = await status_of(kube, "shared", "DeletionBlocked", "True")
    assert obj["metadata"].get("deletionTimestamp")
    assert "MCPRemoteProxy/a, MCPServer/b" in (condition(obj, "DeletionBlocked") or {})["message"]

    await kube.delete(REMOTE, "a")
    obj = await eventually(
        lambda: _blocked_only_by(kube, "MCPServer/b"), what="the remaining referrer named after one goes away"
    )
    await kube.patch("mcpservers", "b", {"spec": {"externalAuthConfigRef": None}})
    await eventually(lambda: _gone(kube, "shared"), what="the config deleted once unreferenced")


async def _blocked_only_by(kube: Api, who: str) -> bool:
    obj = await kube.get(AUTH, "shared")
    return (condition(obj, "DeletionBlocked") or {}).get("message", "").endswith(f"still used by {who}")


async def _gone(kube: Api, name: str) -> bool:
    from kubernetes_asyncio import client  # noqa: PLC0415

    try:
        await kube.get(AUTH, name)
    except client.ApiException as exc:
        return exc.status == 404
    return False


async def test_unreferenced_config_deletes_at_once_and_finalizer_leaves_with_the_last_user(
    operator: Operator, kube: Api
) -> None:
    await make_secret(kube)
    await kube.create(AUTH, client_credentials("solo"))
    await kube.create(
        REMOTE,
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "p"},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp", "externalAuthConfigRef": {"name": "solo"}},
        },
    )

    async def finalizers() -> list[str]:
        return list((await kube.get(AUTH, "solo"))["metadata"].get("finalizers") or [])

    await eventually(lambda: _has(finalizers, True), what="finalizer added while referenced")
    await kube.patch(REMOTE, "p", {"spec": {"externalAuthConfigRef": None}})
    await eventually(lambda: _has(finalizers, False), what="finalizer removed once unreferenced")
    await kube.delete(AUTH, "solo")
    await eventually(lambda: _gone(kube, "solo"), within=5, what="immediate deletion")


async def _has(finalizers: Any, wanted: bool) -> bool:
    return (FINALIZER in await finalizers()) is wanted


async def test_toolhive_auth_types_are_stored_and_refused_naming_the_field(
    operator: Operator, kube: Api
) -> None:
    """Not a 422 from the schema's enum: the object is stored and refused like every unsupported field,
    and a proxy using it is never deployed without the credential it asked for."""
    await kube.create(
        AUTH,
        resources.auth_config("sts", "awsSts", {"region": "eu-west-1", "roleArn": "arn:aws:iam::1:role/mcp"}),
    )
    obj = await status_of(kube, "sts", "Accepted", "False")
    message = (condition(obj, "Accepted") or {})["message"]
    assert "spec.type: awsSts is not supported yet" in message, message
    assert "spec.awsSts: is not supported yet" in message, message
    assert obj["spec"]["awsSts"]["region"] == "eu-west-1"  # stored as written, not pruned
    await kube.create(REMOTE, remote_proxy("user", externalAuthConfigRef={"name": "sts"}))
    cond = await kube.wait_condition(REMOTE, "user", "ResolvedRefs", reason="ExternalAuthConfigInvalid")
    assert "spec.type: awsSts" in cond["message"], cond
    assert await kube.child("Deployment", "user") is None
