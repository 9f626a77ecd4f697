"""sessionStorage, rateLimiting and sessionAffinity rendered into the children of the three workload kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from api.common import SecretKeyRef
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.validation import parse_and_validate
from api.virtualmcpserver import VirtualMCPServer
from controller.reconcilers import mcpremoteproxy_build, mcpserver_build, virtualmcpserver_build
from controller.reconcilers.render import secret_env_name
from tests.support.builders import SETTINGS, owner_ref

REDIS = {
    "provider": "redis",
    "address": "redis.cache.svc:6379",
    "db": 2,
    "keyPrefix": "team:",
    "passwordRef": {"name": "redis", "key": "password"},
}
LIMITS = {
    "perUser": {"maxTokens": 60, "refillPeriod": "1m0s"},
    "tools": [{"name": "search", "shared": {"maxTokens": 5, "refillPeriod": "10s"}}],
}
META = {"name": "fetch", "namespace": "tools", "uid": "0000-1111", "generation": 1}


def of_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind)


def password_env_entry() -> dict[str, Any]:
    name = secret_env_name(SecretKeyRef(name="redis", key="password"))
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}}


def server_children(**spec: Any) -> list[dict[str, Any]]:
    server = MCPServer.model_validate(
        {"metadata": META, "spec": {"image": "x:1", "transport": "streamable-http", **spec}}
    )
    return mcpserver_build.build_children(
        server, owner_ref("MCPServer", "fetch", "0000-1111"), SETTINGS, None
    )


def test_mcpserver_renders_redis_sessions_limits_and_affinity_with_the_password_in_env_only() -> None:
    objs = server_children(sessionStorage=REDIS, rateLimiting=LIMITS, sessionAffinity="ClientIP", replicas=3)
    config = json.loads(of_kind(objs, "ConfigMap")["data"]["proxy.json"])
    env_name = password_env_entry()["name"]
    assert config["sessionStorage"] == {
        "provider": "redis",
        "address": "redis.cache.svc:6379",
        "db": 2,
        "keyPrefix": "team:",
        "passwordRef": {"env": env_name},
    }
    assert config["rateLimiting"]["perUser"] == {"maxTokens": 60, "refillPeriod": "60s"}
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert password_env_entry() in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    front = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "fetch")
    assert front["spec"]["sessionAffinity"] == "ClientIP"


def test_unset_fields_render_as_before() -> None:
    objs = server_children()
    config = json.loads(of_kind(objs, "ConfigMap")["data"]["proxy.json"])
    assert "sessionStorage" not in config and "rateLimiting" not in config
    assert all("sessionAffinity" not in o["spec"] for o in objs if o["kind"] == "Service")
    assert "replicas" not in of_kind(objs, "Deployment")["spec"]  # left to an HPA


def test_remote_proxy_renders_sessions_and_affinity() -> None:
    proxy = MCPRemoteProxy.model_validate(
        {
            "metadata": {**META, "name": "saas"},
            "spec": {
                "remoteUrl": "https://mcp.example.com/mcp",
                "sessionStorage": REDIS,
                "sessionAffinity": "None",
            },
        }
    )
    rendered = mcpremoteproxy_build.render_config(proxy, SETTINGS, None, None)
    assert rendered.config.session_storage.redis
    objs = mcpremoteproxy_build.build_children(
        proxy, owner_ref("MCPRemoteProxy", "saas", "1"), SETTINGS, rendered
    )
    assert (
        password_env_entry()
        in of_kind(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    )
    assert of_kind(objs, "Service")["spec"]["sessionAffinity"] == "None"


def gateway_children(**spec: Any) -> list[dict[str, Any]]:
    vmcp = VirtualMCPServer.model_validate(
        {
            "metadata": {**META, "name": "gw"},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}, **spec},
        }
    )
    config = virtualmcpserver_build.build_vmcp_config(vmcp, [], SETTINGS)
    return virtualmcpserver_build.build_children(
        vmcp, owner_ref("VirtualMCPServer", "gw", "2"), SETTINGS, config
    )


def test_gateway_renders_sessions_and_limits_and_rolls_its_pods_when_they_change() -> None:
    plain = gateway_children()
    shared = gateway_children(sessionStorage=REDIS, config={"rateLimiting": LIMITS}, replicas=2)
    config = yaml.safe_load(of_kind(shared, "ConfigMap")["data"]["vmcp.yaml"])
    assert config["sessionStorage"]["address"] == "redis.cache.svc:6379"
    assert config["rateLimiting"]["tools"][0]["name"] == "search"
    assert "password" not in of_kind(shared, "ConfigMap")["data"]["vmcp.yaml"].replace("passwordRef", "")
    deployment = of_kind(shared, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert password_env_entry() in deployment["spec"]["template"]["spec"]["containers"][0]["env"]

    def digest(objs: list[dict[str, Any]]) -> str:
        return str(
            of_kind(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        )

    assert digest(shared) != digest(plain)  # read once at start: a change must roll the gateway
    assert "sessionStorage" not in yaml.safe_load(of_kind(plain, "ConfigMap")["data"]["vmcp.yaml"])


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        (
            "MCPServer",
            {"sessionStorage": {"provider": "redis", "address": "redis"}},
            "spec.sessionStorage.address",
        ),
        ("MCPServer", {"sessionStorage": {"provider": "redis"}}, "spec.sessionStorage"),
        (
            "MCPServer",
            {"rateLimiting": {"shared": {"maxTokens": 0, "refillPeriod": "1m"}}},
            "spec.rateLimiting.shared.maxTokens",
        ),
        (
            "MCPServer",
            {"rateLimiting": {"perUser": {"maxTokens": -3, "refillPeriod": "1m"}}},
            "spec.rateLimiting.perUser.maxTokens",
        ),
        (
            "MCPServer",
            {"rateLimiting": {"perUser": {"maxTokens": 3, "refillPeriod": "a minute"}}},
            "spec.rateLimiting.perUser.refillPeriod",
        ),
        (
            "MCPRemoteProxy",
            {"sessionStorage": {"provider": "redis", "address": "r:0"}},
            "spec.sessionStorage.address",
        ),
        (
            "VirtualMCPServer",
            {
                "config": {
                    "rateLimiting": {
                        "tools": [{"name": "t", "perUser": {"maxTokens": 1, "refillPeriod": "0s"}}]
                    }
                }
            },
            "spec.config.rateLimiting.tools[0].perUser.refillPeriod",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_field(kind: str, spec: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "MCPServer": {"image": "x:1", "transport": "streamable-http"},
        "MCPRemoteProxy": {"remoteUrl": "https://mcp.example.com/mcp"},
        "VirtualMCPServer": {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}},
    }[kind]
    obj, problems = parse_and_validate({"kind": kind, "metadata": META, "spec": {**base, **spec}})
    assert obj is not None
    assert field in [p.field for p in problems], problems
