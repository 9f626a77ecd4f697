"""``embeddedAuthServer`` configs: ToolHive's rules, and what the proxy's config and Deployment get (pure)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.proxy_config import load_proxy_config
from api.validation import parse_and_validate
from controller.reconcilers.auth_server_render import auth_server_config
from controller.reconcilers.mcpexternalauthconfig import render_problems
from controller.reconcilers.mcpremoteproxy_build import build_children, render_config
from controller.reconcilers.render import SecretEnv
from tests.support.builders import SETTINGS, owner_ref

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests/fixtures/toolhive-examples"
EXAMPLE = EXAMPLES / "examples__operator__redis-storage__mcpexternalauthconfig-redis-storage.yaml"


def example() -> dict[str, Any]:
    """ToolHive's Redis Sentinel example, ported by changing its API group."""
    doc = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d)
    doc["apiVersion"] = doc["apiVersion"].replace("toolhive.stacklok.dev", "mcp-operator.dev")
    return dict(doc)


def config(doc: dict[str, Any]) -> MCPExternalAuthConfig:
    parsed, problems = parse_and_validate(doc)
    assert isinstance(parsed, MCPExternalAuthConfig) and problems == [], problems
    return parsed


def problems_of(change: dict[str, Any]) -> list[str]:
    doc = example()
    doc["spec"]["embeddedAuthServer"] |= change
    _, problems = parse_and_validate(doc)
    return [str(p) for p in problems]


def test_the_example_renders_with_secrets_as_environment_references_only(tmp_path: Path) -> None:
    auth = config(example())
    assert render_problems(auth) == []
    proxy = MCPRemoteProxy.model_validate(
        {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "saas", "namespace": "team", "generation": 1},
            "spec": {
                "remoteUrl": "https://mcp.example.com/mcp",
                "authServerRef": {"name": "auth-with-redis"},
            },
        }
    )
    rendered = render_config(proxy, SETTINGS, None, None, auth_server=auth)
    server = rendered.config.auth_server
    assert server is not None
    assert (
        server.issuer == "https://auth.example.com" and server.resource_url == "https://auth.example.com/mcp"
    )
    assert server.upstream.issuer_url == "https://accounts.google.com"
    assert not server.upstream.allow_private_endpoint  # a public provider stays behind the SSRF guard
    redis = server.storage.redis
    assert redis is not None and redis.sentinel_master == "mymaster"
    assert redis.sentinel_addresses == ("redis-sentinel.redis.svc.cluster.local:26379",)
    # Every Secret key is an environment variable filled by the kubelet; the ConfigMap names variables.
    secret_refs = sorted(
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in rendered.env
    )
    assert secret_refs == [
        ("google-oauth-secret", "client-secret"),
        ("redis-credentials", "password"),
        ("redis-credentials", "username"),
    ]
    children = build_children(proxy, owner_ref("MCPRemoteProxy", "saas", "u"), SETTINGS, rendered)
    config_map = next(c for c in children if c["kind"] == "ConfigMap")
    (tmp_path / "proxy.json").write_text(next(iter(config_map["data"].values())))
    assert load_proxy_config(tmp_path / "proxy.json").auth_server == server  # the file loads back as rendered
    deployment = next(c for c in children if c["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all("value" not in e for e in env if e["name"].startswith("SECRET_"))
    before = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    changed = example()
    changed["spec"]["embeddedAuthServer"]["issuer"] = "https://auth2.example.com"
    again = render_config(proxy, SETTINGS, None, None, auth_server=config(changed))
    rolled = build_children(proxy, owner_ref("MCPRemoteProxy", "saas", "u"), SETTINGS, again)
    after = next(c for c in rolled if c["kind"] == "Deployment")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert after[CONFIG_HASH_ANNOTATION] != before  # a changed config rolls the proxy


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"allowConfidentialClientRegistration": True, "insecureAllowHTTP": True},
            "spec.embeddedAuthServer.allowConfidentialClientRegistration: cannot be combined with",
        ),
        (
            {
                "upstreamProviders": [
                    {"name": "a", "type": "oauth2", "oidcConfig": {"issuerUrl": "https://i", "clientId": "c"}}
                ]
            },
            "spec.embeddedAuthServer.upstreamProviders[0].type: type must be 'oidc' or 'oauth2'",
        ),
        (
            {
                "upstreamProviders": [
                    {"name": "a", "type": "oidc", "oidcConfig": {"issuerUrl": "https://i", "clientId": "c"}},
                    {"name": "b", "type": "oidc", "oidcConfig": {"issuerUrl": "https://j", "clientId": "c"}},
                ]
            },
            "spec.embeddedAuthServer.upstreamProviders: MCPServer and MCPRemoteProxy sign users in at one",
        ),
        (
            {
                "upstreamProviders": [
                    {
                        "name": "a",
                        "type": "oauth2",
                        "oauth2Config": {
                            "authorizationEndpoint": "https://a",
                            "tokenEndpoint": "https://t",
                            "clientId": "c",
                            "userInfo": {"endpointUrl": "https://u"},
                        },
                    }
                ]
            },
            "spec.embeddedAuthServer.upstreamProviders[0].oauth2Config.userInfo: is not supported yet",
        ),
        ({"cimd": {"enabled": True}}, "spec.embeddedAuthServer.cimd: is not supported yet"),
        (
            {
                "storage": {
                    "type": "redis",
                    "redis": {
                        "addr": "r:6379",
                        "sentinelConfig": {"masterName": "m", "sentinelAddrs": ["s:1"]},
                        "aclUserConfig": {"passwordSecretRef": {"name": "p", "key": "k"}},
                    },
                }
            },
            "spec.embeddedAuthServer.storage.redis: set exactly one of addr or sentinelConfig",
        ),
    ],
)
def test_toolhives_rules_refuse_naming_the_field(change: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of(change)), problems_of(change)


def test_what_the_proxy_would_refuse_is_refused_by_the_config() -> None:
    doc = example()
    doc["spec"]["embeddedAuthServer"]["issuer"] = "http://auth.example.com"  # no insecureAllowHTTP
    problems = render_problems(config(copy.deepcopy(doc)))
    assert [p.field for p in problems] == ["spec.embeddedAuthServer"]
    assert "must use https" in problems[0].message


def test_an_in_cluster_provider_may_have_a_private_address() -> None:
    doc = example()
    oidc = doc["spec"]["embeddedAuthServer"]["upstreamProviders"][0]["oidcConfig"]
    oidc["issuerUrl"] = "https://keycloak.auth.svc.cluster.local/realms/mcp"
    secrets = SecretEnv()
    embedded = config(doc).spec.embedded_auth_server
    assert embedded is not None
    rendered = auth_server_config(
        embedded,
        namespace="ns",
        resource_url="https://a/mcp",
        cluster_domain="cluster.local",
        secrets=secrets,
    )
    assert rendered.upstream.allow_private_endpoint
