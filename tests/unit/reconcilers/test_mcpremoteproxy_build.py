"""Pure builders of an MCPRemoteProxy's children and the remote URL rules (no event loop, no cluster).

Regenerate the golden file after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/reconcilers``
and review the diff.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.checks import remote_url_problems
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcptoolconfig import MCPToolConfig
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.proxy_config import ProxyConfig
from api.validation import parse_and_validate, validate
from controller.reconcilers.mcpexternalauthconfig import render_problems
from controller.reconcilers.mcpremoteproxy_build import Names, build_children, render_config, service_url
from tests.support.builders import SETTINGS, assert_matches_golden, owner_ref

OWNER = owner_ref("MCPRemoteProxy", "saas", "0000-2222")


def make(url: str = "https://mcp.example.com/v1/mcp?tenant=acme", **spec: Any) -> MCPRemoteProxy:
    return MCPRemoteProxy.model_validate(
        {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "saas", "namespace": "team", "generation": 1},
            "spec": {"remoteUrl": url, **spec},
        }
    )


def auth(spec: dict[str, Any]) -> MCPExternalAuthConfig:
    return MCPExternalAuthConfig.model_validate(
        {"kind": "MCPExternalAuthConfig", "metadata": {"name": "cfg", "namespace": "team"}, "spec": spec}
    )


FULL = {
    "headerForward": {
        "addPlaintextHeaders": {"X-Client": "mcp-operator"},
        "addHeadersFromSecret": [
            {"headerName": "X-Tenant", "valueSecretRef": {"name": "up", "key": "tenant"}}
        ],
    },
    "oidcConfig": {"inline": {"issuer": "https://idp.example.com", "audience": "saas"}},
    "audit": {"enabled": True},
    "replicas": 2,
    "podDisruptionBudget": {"minAvailable": 1},
    "resourceOverrides": {"proxyDeployment": {"env": [{"name": "LOG_LEVEL", "value": "debug"}]}},
}
CC = {
    "type": "oauth2ClientCredentials",
    "oauth2ClientCredentials": {
        "tokenUrl": "https://idp.example.com/token",
        "clientId": "proxy",
        "clientSecretRef": {"name": "idp", "key": "client-secret"},
        "scopes": ["mcp.read"],
        "audience": "https://mcp.example.com",
    },
}
TOOLS = MCPToolConfig.model_validate(
    {"kind": "MCPToolConfig", "metadata": {"name": "t"}, "spec": {"toolsFilter": ["echo"]}}
)


def test_golden_children() -> None:
    proxy = make(**FULL)
    objs = build_children(proxy, OWNER, SETTINGS, render_config(proxy, SETTINGS, TOOLS, auth(CC)))
    assert_matches_golden(objs, "mcpremoteproxy-full.yaml")


def test_config_loads_back_and_names_secrets_only_by_env() -> None:
    proxy = make(**FULL)
    rendered = render_config(proxy, SETTINGS, TOOLS, auth(CC))
    loaded = ProxyConfig.model_validate(json.loads(rendered.text))
    assert loaded == rendered.config
    backend = loaded.backend
    assert backend.type == "http" and backend.url == "https://mcp.example.com/v1/mcp?tenant=acme"
    assert backend.allow_private_endpoint is False
    assert backend.auth is not None and backend.auth.type == "oauth2ClientCredentials"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in rendered.env}
    assert env[backend.auth.client_secret_ref.env or ""] == {"name": "idp", "key": "client-secret"}
    header = backend.header_forward.add_headers_from_secret[0]  # type: ignore[union-attr]
    assert env[header.value_secret_ref.env or ""] == {"name": "up", "key": "tenant"}
    assert loaded.tool_filter.allow == ("echo",) and loaded.audit.enabled is True


def test_deployment_env_carries_secrets_and_overrides_and_hash() -> None:
    proxy = make(**FULL)
    rendered = render_config(proxy, SETTINGS, None, auth(CC))
    deployment = next(
        o for o in build_children(proxy, OWNER, SETTINGS, rendered) if o["kind"] == "Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert names == [*(e["name"] for e in rendered.env), "LOG_LEVEL"]
    assert (
        deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == rendered.digest
    )
    assert deployment["spec"]["replicas"] == 2


def test_changing_the_auth_config_changes_the_hash_and_unset_replicas_are_not_applied() -> None:
    proxy = make()
    first = render_config(proxy, SETTINGS, None, auth(CC))
    changed = {**CC, "oauth2ClientCredentials": {**CC["oauth2ClientCredentials"], "scopes": ["mcp.write"]}}  # type: ignore[dict-item]
    assert render_config(proxy, SETTINGS, None, auth(changed)).digest != first.digest
    assert render_config(proxy, SETTINGS, None, None).digest != first.digest
    deployment = next(o for o in build_children(proxy, OWNER, SETTINGS, first) if o["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]


def test_service_account_and_url() -> None:
    kinds = [
        (o["kind"], o["metadata"]["name"])
        for o in build_children(make(), OWNER, SETTINGS, render_config(make(), SETTINGS, None, None))
    ]
    assert kinds == [
        ("ConfigMap", "saas-proxy"),
        ("ServiceAccount", "saas-proxy"),
        ("Deployment", "saas"),
        ("Service", "saas"),
    ]
    own = make(serviceAccount="mine")
    objs = build_children(own, OWNER, SETTINGS, render_config(own, SETTINGS, None, None))
    assert "ServiceAccount" not in [o["kind"] for o in objs]
    assert (
        service_url(make(transport="sse", proxyPort=9000), SETTINGS)
        == "http://saas.team.svc.cluster.local:9000/sse"
    )


def test_long_names_get_shortened_children_with_a_stable_hash() -> None:
    proxy = MCPRemoteProxy.model_validate(
        {**make().model_dump(by_alias=True), "metadata": {"name": "x" * 60, "namespace": "team"}}
    )
    assert validate(proxy) == []
    names = Names("x" * 60)
    assert names.proxy == "x" * 60 and len(names.config) == 63 and names.config.endswith("-proxy")
    assert names.config == Names("x" * 60).config != Names("x" * 61).config


def test_plain_http_token_url_is_refused_by_the_data_plane_rules() -> None:
    bad = {
        **CC,
        "oauth2ClientCredentials": {**CC["oauth2ClientCredentials"], "tokenUrl": "http://idp.example.com/t"},
    }  # type: ignore[dict-item]
    problems = render_problems(auth(bad))
    assert [p.field for p in problems] == ["spec.oauth2ClientCredentials"] and "https" in problems[0].message
    assert render_problems(auth(CC)) == []


UNSAFE = {
    "http://127.0.0.1/mcp": "loopback",
    "http://[::1]:8080/mcp": "loopback",
    "http://10.0.0.5/mcp": "allowPrivateEndpoint",
    "http://172.16.0.1/mcp": "allowPrivateEndpoint",
    "http://192.168.1.1/mcp": "allowPrivateEndpoint",
    "http://169.254.169.254/latest/meta-data": "cloud metadata",
    "http://[fd00::1]/mcp": "allowPrivateEndpoint",
    "http://0.0.0.0/mcp": "unspecified",
    "http://user:pass@host.example.com/mcp": "credentials",
    "ftp://mcp.example.com/mcp": "only http and https",
    "http://:8080/mcp": "no host",
    "not a url": "no scheme",
    "http://[::1": "not a valid URL",
    "http://[::ffff:127.0.0.1]/mcp": "loopback",
    "http://[fe80::1]/mcp": "link-local",
    "http://100.64.0.1/mcp": "allowPrivateEndpoint",
    "http://metadata.google.internal/": "cloud metadata",
    "http://kubernetes.default.svc/": "API server",
    "http://mcp.tools.svc.cluster.local/mcp": "allowPrivateEndpoint",
}


@pytest.mark.parametrize("url", sorted(UNSAFE))
def test_unsafe_remote_urls_are_refused_with_a_clear_message(url: str) -> None:
    problems = remote_url_problems(url, "spec.remoteUrl", allow_private=False)
    assert len(problems) == 1 and UNSAFE[url] in problems[0].message, problems
    allowed = remote_url_problems(url, "spec.remoteUrl", allow_private=True)
    assert (allowed == []) is (UNSAFE[url] == "allowPrivateEndpoint"), (url, allowed)
    raw = {"kind": "MCPRemoteProxy", "metadata": {"name": "p", "namespace": "n"}, "spec": {"remoteUrl": url}}
    _, reported = parse_and_validate(raw)  # what the reconciler reports (schema or rule)
    assert [p.field for p in reported] == ["spec.remoteUrl"], reported


@pytest.mark.parametrize(
    "url", ["https://mcp.example.com/mcp", "http://8.8.8.8:8080/x?y=1", "https://[2606:4700::1111]/"]
)
def test_public_urls_pass(url: str) -> None:
    _, problems = parse_and_validate(
        {"kind": "MCPRemoteProxy", "metadata": {"name": "p", "namespace": "n"}, "spec": {"remoteUrl": url}}
    )
    assert problems == []


def test_endpoint_prefix_and_trusted_proxy_headers_reach_the_proxy_config() -> None:
    rendered = render_config(make(endpointPrefix="saas", trustProxyHeaders=True), SETTINGS, None, None)
    loaded = ProxyConfig.model_validate_json(rendered.text)
    assert (loaded.endpoint_prefix, loaded.trust_proxy_headers) == ("saas", True)
