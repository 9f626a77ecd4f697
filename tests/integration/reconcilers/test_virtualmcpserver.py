"""VirtualMCPServer on the real kube-apiserver: the ConfigMap follows the group's members without rolling
the gateway, a missing group gives Pending, and health written by the gateway is kept and read."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.support.kube import GROUP, VERSION, Api, condition
from tests.support.metrics import metric_total
from tests.support.operator import Operator
from tests.support.resources import bearer_token
from tests.support.waiting import eventually

PLURAL = "virtualmcpservers"
GATEWAY_MANAGER = "mcp-operator-vmcp"


def vmcp(name: str, group: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "VirtualMCPServer",
        "metadata": {"name": name},
        "spec": {"groupRef": {"name": group}, "incomingAuth": {"type": "anonymous"}, **spec},
    }


def group(name: str) -> dict[str, Any]:
    return {"kind": "MCPGroup", "metadata": {"name": name}, "spec": {}}


def server(name: str, group_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "MCPServer",
        "metadata": {"name": name},
        "spec": {
            "image": "ghcr.io/example/mcp:1",
            "transport": "streamable-http",
            "groupRef": {"name": group_name},
            **spec,
        },
    }


async def config_of(kube: Api, name: str) -> dict[str, Any] | None:
    cm = await kube.child("ConfigMap", f"{name}-vmcp")
    if cm is None:
        return None
    loaded: dict[str, Any] = yaml.safe_load(cm["data"]["vmcp.yaml"])
    return loaded


async def member_urls(kube: Api, members: list[tuple[str, str]]) -> dict[str, str]:
    """name -> the member's current status.url (as its own reconciler or the test published it)."""
    urls = {}
    for plural, name in members:
        url = ((await kube.get(plural, name)).get("status") or {}).get("url")
        if url:
            urls[name] = url
    return urls


async def backends_equal_members(kube: Api, name: str, members: list[tuple[str, str]]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        config = await config_of(kube, name)
        expected = await member_urls(kube, members)
        if config is None or len(expected) != len(members):
            return None
        got = {b["name"]: b["url"] for b in config.get("backends", [])}
        return config if got == expected else None

    result: dict[str, Any] = await eventually(check, what=f"ConfigMap of {name} listing exactly {members}")
    return result


async def vmcp_status(kube: Api, name: str, **expected: Any) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        status = obj.get("status") or {}
        return obj if all(status.get(k) == v for k, v in expected.items()) else None

    result: dict[str, Any] = await eventually(check, what=f"VirtualMCPServer {name} status {expected}")
    return result


async def url_contains(kube: Api, plural: str, name: str, part: str) -> None:
    async def check() -> bool:
        return part in (((await kube.get(plural, name)).get("status") or {}).get("url") or "")

    await eventually(check, what=f"{name} publishing a url with {part}")


def pod_template(deployment: dict[str, Any]) -> str:
    return json.dumps(deployment["spec"]["template"], sort_keys=True)


async def publish_url(kube: Api, plural: str, name: str, url: str) -> None:
    """Set a member's status.url as its reconciler would (for kinds no reconciler serves in this run)."""
    await kube.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        kube.ns,
        plural,
        name,
        {"status": {"url": url}},
        _content_type="application/merge-patch+json",
    )


async def test_configmap_follows_members_without_rollout(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create("mcpservers", server("alpha", "team"))
    await kube.create("mcpservers", server("beta", "team", transport="sse"))
    await kube.create(PLURAL, vmcp("gw", "team"))

    members = [("mcpservers", "alpha"), ("mcpservers", "beta")]
    config = await backends_equal_members(kube, "gw", members)
    assert config["name"] == "gw"
    transports = {b["name"]: b["transport"] for b in config["backends"]}
    assert transports == {"alpha": "streamable-http", "beta": "sse"}
    deployment = await eventually(lambda: kube.child("Deployment", "gw"), what="gateway Deployment")
    template, generation = pod_template(deployment), deployment["metadata"]["generation"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][:3] == [
        "vmcp",
        "--config",
        "/etc/mcp-operator/vmcp.yaml",
    ]
    for kind, child in (
        ("Service", "gw"),
        ("ServiceAccount", "gw-vmcp"),
        ("Role", "gw-vmcp"),
        ("RoleBinding", "gw-vmcp"),
    ):
        found = await kube.wait_child(kind, child)  # the Service may land just after the Deployment
        assert found["metadata"]["ownerReferences"][0]["name"] == "gw"

    # Add a member: a remote proxy (its URL published as its reconciler does).
    await kube.create(
        "mcpremoteproxies",
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "saas"},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp", "groupRef": {"name": "team"}},
        },
    )
    if not (await kube.get("mcpremoteproxies", "saas")).get("status", {}).get("url"):
        await publish_url(
            kube, "mcpremoteproxies", "saas", f"http://saas.{kube.ns}.svc.cluster.local:8080/mcp"
        )
    members.append(("mcpremoteproxies", "saas"))
    await backends_equal_members(kube, "gw", members)

    # Re-point a member's URL (its proxy port changes), then move another member to a different group.
    await kube.patch("mcpservers", "alpha", {"spec": {"proxyPort": 9090}})
    await url_contains(kube, "mcpservers", "alpha", ":9090/")
    config = await backends_equal_members(kube, "gw", members)
    assert ":9090/" in next(b["url"] for b in config["backends"] if b["name"] == "alpha")
    await kube.create("mcpgroups", group("elsewhere"))
    await kube.patch("mcpservers", "beta", {"spec": {"groupRef": {"name": "elsewhere"}}})
    members.remove(("mcpservers", "beta"))
    await backends_equal_members(kube, "gw", members)

    # Remove a member.
    await kube.delete("mcpremoteproxies", "saas")
    members.remove(("mcpremoteproxies", "saas"))
    await backends_equal_members(kube, "gw", members)

    status = await vmcp_status(kube, "gw", backendCount=1)
    assert [b["name"] for b in status["status"]["discoveredBackends"]] == ["alpha"]
    after = await kube.child("Deployment", "gw")
    assert after is not None
    assert after["metadata"]["generation"] == generation, "membership changes must not roll the gateway"
    assert pod_template(after) == template


async def test_missing_group_pending_then_resolves(operator: Operator, kube: Api) -> None:
    await kube.create(PLURAL, vmcp("gw", "later"))
    obj = await vmcp_status(kube, "gw", phase="Pending")
    refs = condition(obj, "ResolvedRefs")
    assert refs is not None and refs["status"] == "False" and refs["reason"] == "GroupNotFound"
    assert "'later'" in refs["message"]
    assert await kube.child("ConfigMap", "gw-vmcp") is None

    await kube.create("mcpgroups", group("later"))
    await kube.create("mcpservers", server("alpha", "later"))
    await backends_equal_members(kube, "gw", [("mcpservers", "alpha")])
    obj = await kube.get(PLURAL, "gw")
    assert obj["metadata"]["generation"] == 1, "the VirtualMCPServer itself was not edited"
    await eventually(
        lambda: _condition_is(kube, "gw", "ResolvedRefs", "True"), what="ResolvedRefs=True after the group"
    )

    # Pending until a gateway pod is ready; then Ready, with the url clients use.
    assert (await kube.get(PLURAL, "gw"))["status"]["phase"] == "Pending"
    await kube.mark_ready("Deployment", "gw")
    obj = await vmcp_status(kube, "gw", phase="Ready")
    assert obj["status"]["url"] == f"http://gw.{kube.ns}.svc.cluster.local:4483/mcp"
    assert obj["status"]["backendCount"] == 1
    assert obj["status"]["discoveredBackends"][0]["status"] == "unknown"  # no health written yet

    # Converged: a reconcile caused by an unrelated edit sends no write at all.
    # The member MCPServer and the group may still be writing their own status: wait for quiet first.
    writes = await operator.settled()
    reconciles = operator.reconciles("virtualmcpserver")
    await kube.patch(PLURAL, "gw", {"metadata": {"annotations": {"team": "a"}}})

    async def reconciled_again() -> bool:
        return operator.reconciles("virtualmcpserver") > reconciles

    await eventually(reconciled_again, what="a reconcile after the annotation edit")
    assert operator.writes() == writes


async def write_health(kube: Api, name: str, backends: list[dict[str, Any]]) -> None:
    """Apply ``status.discoveredBackends`` as the gateway does: with its own field manager."""
    health = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualMCPServer",
        "metadata": {"name": name, "namespace": kube.ns},
        "status": {"discoveredBackends": backends},
    }
    await kube.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        kube.ns,
        PLURAL,
        name,
        health,
        field_manager=GATEWAY_MANAGER,
        _content_type="application/apply-patch+yaml",
    )


async def test_gateway_health_is_kept_and_gives_degraded(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create("mcpservers", server("alpha", "team"))
    await kube.create("mcpservers", server("beta", "team"))
    await kube.create(PLURAL, vmcp("gw", "team"))
    await backends_equal_members(kube, "gw", [("mcpservers", "alpha"), ("mcpservers", "beta")])
    await eventually(lambda: kube.child("Deployment", "gw"), what="gateway Deployment")
    await kube.mark_ready("Deployment", "gw")
    await vmcp_status(kube, "gw", phase="Ready", backendCount=2)

    # The gateway writes health with its own field manager: only the health keys of each item.
    health = [
        {"name": "alpha", "status": "ready", "lastHealthCheck": "2026-01-01T00:00:00Z"},
        {"name": "beta", "status": "unavailable", "message": "connection refused"},
    ]
    await write_health(kube, "gw", health)
    obj = await vmcp_status(kube, "gw", phase="Degraded", backendCount=1)
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "True" and "beta" in ready["message"]

    # An operator write (a member's URL changes) keeps the gateway's health fields.
    await kube.patch("mcpservers", "alpha", {"spec": {"proxyPort": 9090}})
    await url_contains(kube, "mcpservers", "alpha", ":9090/")
    await backends_equal_members(kube, "gw", [("mcpservers", "alpha"), ("mcpservers", "beta")])

    async def url_moved() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, "gw")
        items = {b["name"]: b for b in obj["status"]["discoveredBackends"]}
        return items if ":9090/" in items["alpha"].get("url", "") else None

    items = await eventually(url_moved, what="discoveredBackends url updated by the operator")
    assert items["alpha"]["status"] == "ready" and items["alpha"]["lastHealthCheck"]
    assert items["beta"]["status"] == "unavailable" and items["beta"]["message"] == "connection refused"
    managers = {m["manager"] for m in (await kube.get(PLURAL, "gw"))["metadata"]["managedFields"]}
    assert GATEWAY_MANAGER in managers and "mcp-operator" in managers

    # The gateway reports the backend back: Ready again.
    health[1] = {"name": "beta", "status": "ready"}
    await write_health(kube, "gw", health)
    await vmcp_status(kube, "gw", phase="Ready", backendCount=2)


async def test_invalid_spec_is_failed(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create(PLURAL, vmcp("gw", "team", config={"aggregation": {"conflictResolution": "priority"}}))
    obj = await vmcp_status(kube, "gw", phase="Failed")
    accepted = condition(obj, "Accepted")
    assert accepted is not None and accepted["status"] == "False"
    assert "priorityOrder" in accepted["message"]
    assert await kube.child("ConfigMap", "gw-vmcp") is None


async def _condition_is(kube: Api, name: str, type_: str, status: str) -> bool:
    cond = condition(await kube.get(PLURAL, name), type_)
    return cond is not None and cond["status"] == status


async def test_outbound_auth_from_external_auth_config(operator: Operator, kube: Api) -> None:
    await kube.create_secret("tok", {"token": "s3cr3t-value"})
    await kube.create("mcpgroups", group("team"))
    await kube.create("mcpservers", server("alpha", "team"))
    outgoing = {
        "backends": {"alpha": {"type": "externalAuthConfigRef", "externalAuthConfigRef": {"name": "k"}}}
    }
    await kube.create(PLURAL, vmcp("gw", "team", outgoingAuth=outgoing))

    # Without its auth config the backend is left out (never dialled without its credential).
    # The group and the member may reach the operator's cache after the gateway (GroupNotFound first):
    # their watches re-enqueue it, and then only the auth config is missing.
    await kube.wait_condition(
        PLURAL, "gw", "ResolvedRefs", status="False", reason="ExternalAuthConfigNotFound"
    )
    config = await eventually(lambda: config_of(kube, "gw"), what="gateway ConfigMap")
    assert config["backends"] == []

    await kube.create("mcpexternalauthconfigs", bearer_token("k", "tok", "token"))
    config = await backends_equal_members(kube, "gw", [("mcpservers", "alpha")])
    env_name = config["backends"][0]["auth"]["tokenSecretRef"]["env"]
    cm = await kube.child("ConfigMap", "gw-vmcp")
    assert cm is not None and "s3cr3t-value" not in json.dumps(cm)

    async def env() -> list[dict[str, Any]] | None:
        deployment = await kube.child("Deployment", "gw")
        container = deployment["spec"]["template"]["spec"]["containers"][0] if deployment else {}
        found: list[dict[str, Any]] = container.get("env") or []
        # The ConfigMap is applied before the Deployment: wait for the variable the config names.
        return found if any(e["name"] == env_name for e in found) else None

    assert (await eventually(env, what="secret env on the gateway"))[3:] == [
        {"name": env_name, "valueFrom": {"secretKeyRef": {"name": "tok", "key": "token"}}}
    ]
    await eventually(lambda: _condition_is(kube, "gw", "ResolvedRefs", "True"), what="ResolvedRefs=True")

    # tokenExchange needs a per-caller token, which shared backend sessions cannot carry: refused by name.
    await kube.patch(
        "mcpexternalauthconfigs",
        "k",
        {
            "spec": {
                "type": "tokenExchange",
                "bearerToken": None,
                "tokenExchange": {"tokenUrl": "https://sts.example.com/token"},
            }
        },
    )
    await kube.wait_condition(
        PLURAL, "gw", "ResolvedRefs", status="False", reason="ExternalAuthConfigUnsupported"
    )
    assert await eventually(lambda: _no_backends(kube, "gw"), what="backend withdrawn from the ConfigMap")


async def _no_backends(kube: Api, name: str) -> bool:
    config = await config_of(kube, name)
    return config is not None and config.get("backends") == []


async def test_deleting_the_group_of_a_gateway_with_members_is_reported_not_failed(
    operator: Operator, kube: Api
) -> None:
    # The operator's status apply then removes every discoveredBackends item it owned: the API server
    # must accept the emptied list (it is stored as null), or every reconcile of the gateway fails.
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create(
        "mcpservers",
        {
            "kind": "MCPServer",
            "metadata": {"name": "member"},
            "spec": {"image": "x/y:1", "groupRef": {"name": "team"}},
        },
    )
    await kube.create(
        PLURAL,
        {
            "kind": "VirtualMCPServer",
            "metadata": {"name": "gw"},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}},
        },
    )

    async def listed() -> bool:
        backends = (await kube.get(PLURAL, "gw")).get("status", {}).get("discoveredBackends") or []
        return [b["name"] for b in backends] == ["member"]

    await eventually(listed, what="the member in discoveredBackends")
    errors_before = metric_total(operator.manager, "controller_runtime_reconcile_errors")
    await kube.delete("mcpgroups", "team")
    cond = await kube.wait_condition(PLURAL, "gw", "ResolvedRefs", reason="GroupNotFound")
    assert cond["status"] == "False"
    status = (await kube.get(PLURAL, "gw"))["status"]
    assert status["phase"] == "Pending" and not status.get("discoveredBackends"), status
    assert metric_total(operator.manager, "controller_runtime_reconcile_errors") == errors_before


async def test_log_level_debug_restarts_the_gateway_at_debug(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("loud-team"))
    await kube.create(PLURAL, vmcp("loud", "loud-team"))
    first = await kube.wait_child("Deployment", "loud")
    assert "--log-level" not in first["spec"]["template"]["spec"]["containers"][0]["args"]
    await kube.patch(PLURAL, "loud", {"spec": {"config": {"operational": {"logLevel": "debug"}}}})

    async def debug_args() -> list[str] | None:
        dep = await kube.child("Deployment", "loud")
        args: list[str] = (dep or {})["spec"]["template"]["spec"]["containers"][0]["args"]
        return args if args[-2:] == ["--log-level", "debug"] else None

    await eventually(debug_args, what="the gateway started with --log-level debug")


async def test_the_optimizer_is_validated_then_reaches_the_gateway_without_a_rollout(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("search-team"))
    await kube.create(PLURAL, vmcp("search", "search-team", config={"optimizer": {"maxToolsToReturn": 0}}))
    accepted = condition(await vmcp_status(kube, "search", phase="Failed"), "Accepted")
    assert accepted is not None and accepted["status"] == "False"
    assert "spec.config.optimizer.maxToolsToReturn: 0 is not 1 to 50" in accepted["message"]
    assert await kube.child("ConfigMap", "search-vmcp") is None

    semantic = {"maxToolsToReturn": 5, "embeddingService": "http://169.254.169.254/", "embeddingModel": "m"}
    await kube.patch(PLURAL, "search", {"spec": {"config": {"optimizer": semantic}}})

    async def refused_naming_the_embedding_service() -> bool:
        message = (condition(await kube.get(PLURAL, "search"), "Accepted") or {}).get("message", "")
        return (
            "spec.config.optimizer.embeddingService: host '169.254.169.254' is the cloud metadata" in message
        )

    await eventually(refused_naming_the_embedding_service, what="Accepted=False naming embeddingService")
    assert await kube.child("ConfigMap", "search-vmcp") is None

    service = "http://embeddings.search.svc.cluster.local:8080/v1"
    semantic = {"embeddingService": service, "embeddingProvider": "openai", "embeddingModel": None}
    semantic |= {"hybridSearchSemanticRatio": "1.5"}
    await kube.patch(PLURAL, "search", {"spec": {"config": {"optimizer": semantic}}})

    async def refused_naming_the_ratio_and_the_model() -> str | None:
        message = (condition(await kube.get(PLURAL, "search"), "Accepted") or {}).get("message", "")
        ratio = "spec.config.optimizer.hybridSearchSemanticRatio: 1.5 is not within 0.0 to 1.0" in message
        return message if ratio and "spec.config.optimizer.embeddingModel: is required" in message else None

    await eventually(refused_naming_the_ratio_and_the_model, what="Accepted=False naming the ratio and model")
    semantic = {"hybridSearchSemanticRatio": "0.7", "embeddingModel": "text-embedding-3-small"}
    semantic |= {"embeddingHeaders": {"x-cache-key": "search"}}
    await kube.patch(PLURAL, "search", {"spec": {"config": {"optimizer": semantic}}})

    async def optimizer_config() -> dict[str, Any] | None:
        config = await config_of(kube, "search")
        return config if config is not None and "optimizer" in config else None

    config = await eventually(optimizer_config, what="the optimizer in the gateway's config")
    assert config["optimizer"] == {
        "maxToolsToReturn": 5,
        "embeddingService": service,
        "embeddingProvider": "openai",
        "embeddingModel": "text-embedding-3-small",
        "embeddingHeaders": {"x-cache-key": "search"},
        "embeddingServiceTimeout": "30s",  # ToolHive's default, from the schema
        "hybridSearchSemanticRatio": 0.7,
    }
    keyword_only = {k: None for k in semantic} | {"embeddingService": None, "embeddingProvider": None}
    await kube.patch(PLURAL, "search", {"spec": {"config": {"optimizer": keyword_only}}})

    async def keyword_config() -> dict[str, Any] | None:
        config = await config_of(kube, "search")
        return config if config is not None and config.get("optimizer") == {"maxToolsToReturn": 5} else None

    await eventually(keyword_config, what="the optimizer searching by keywords")
    before = pod_template(await kube.wait_child("Deployment", "search"))
    await kube.patch(PLURAL, "search", {"spec": {"config": {"optimizer": None}}})

    async def optimizer_gone() -> bool:
        config = await config_of(kube, "search")
        return config is not None and "optimizer" not in config

    await eventually(optimizer_gone, what="the optimizer off in the gateway's config")
    assert pod_template(await kube.wait_child("Deployment", "search")) == before, "hot-reloaded: no rollout"


async def test_code_mode_is_validated_then_reaches_the_gateway_without_a_rollout(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("script-team"))
    bad = {"enabled": True, "parallelMaxConcurrency": 0, "toolCallTimeout": "0s"}
    await kube.create(PLURAL, vmcp("scripts", "script-team", config={"codeMode": bad}))
    accepted = condition(await vmcp_status(kube, "scripts", phase="Failed"), "Accepted")
    assert accepted is not None and accepted["status"] == "False"
    assert (
        "spec.config.codeMode.parallelMaxConcurrency: 0 is not 1 to 100; use e.g. 10" in accepted["message"]
    )
    assert (
        "spec.config.codeMode.toolCallTimeout: '0s' must be above zero; use e.g. 30s" in accepted["message"]
    )
    assert await kube.child("ConfigMap", "scripts-vmcp") is None

    good = {"enabled": True, "stepLimit": 5000, "parallelMaxConcurrency": None, "toolCallTimeout": "10s"}
    await kube.patch(PLURAL, "scripts", {"spec": {"config": {"codeMode": good}}})

    async def code_mode_config() -> dict[str, Any] | None:
        config = await config_of(kube, "scripts")
        return config if config is not None and "codeMode" in config else None

    config = await eventually(code_mode_config, what="code mode in the gateway's config")
    expected = {"enabled": True, "stepLimit": 5000, "parallelMaxConcurrency": 10, "toolCallTimeout": "10s"}
    assert config["codeMode"] == expected
    before = pod_template(await kube.wait_child("Deployment", "scripts"))
    await kube.patch(PLURAL, "scripts", {"spec": {"config": {"codeMode": {"enabled": False}}}})

    async def code_mode_off() -> bool:
        config = await config_of(kube, "scripts")
        return config is not None and "codeMode" not in config

    await eventually(code_mode_off, what="code mode off in the gateway's config")
    assert pod_template(await kube.wait_child("Deployment", "scripts")) == before, "hot-reloaded: no rollout"
