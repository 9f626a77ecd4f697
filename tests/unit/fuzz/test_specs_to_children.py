"""Random schema-valid objects through validation and every builder.

For any object the API server would store: validation never raises; an invalid spec yields a status the
API server accepts (``Accepted=False`` with a bounded message); a valid one yields children whose names
are DNS-1123 labels within Kubernetes' limits, whose labels are valid label values, and which are the same
when built twice.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from api.embeddingserver import EmbeddingServer, EmbeddingServerStatus
from api.mcpremoteproxy import MCPRemoteProxy, MCPRemoteProxyStatus
from api.mcpserver import MCPServer, MCPServerStatus
from api.validation import format_problems, parse_and_validate
from api.virtualmcpserver import VirtualMCPServer, VirtualMCPServerStatus
from controller.reconcilers import (
    embeddingserver_build,
    mcpremoteproxy_build,
    mcpserver_build,
    virtualmcpserver_build,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import invalid_status
from controller.reconcilers.virtualmcpserver_build import Backend, Member
from tests.unit.fuzz import strategies as s

JSON = dict[str, Any]
SETTINGS = ReconcilerSettings(proxy_image="ghcr.io/mcp-operator/mcp-operator:test")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Services, ConfigMaps, ServiceAccounts, RBAC and Deployments: 63; a StatefulSet also names its pods and
# its controller-revision-hash label, so it stops at 52 (see controller.reconcilers.children).
LIMITS = {"StatefulSet": 52}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def owner(raw: JSON) -> JSON:
    meta = raw["metadata"]
    return {
        "apiVersion": raw["apiVersion"],
        "kind": raw["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def assert_valid_children(children: list[JSON]) -> None:
    """Every child would pass the API server's name and label validation."""
    seen = set()
    for child in children:
        kind, meta = child["kind"], child["metadata"]
        name = meta["name"]
        assert DNS_LABEL.match(name), f"{kind} name {name!r} is not a DNS-1123 label"
        assert len(name) <= LIMITS.get(kind, 63), f"{kind} name {name!r} is {len(name)} characters"
        assert (kind, name) not in seen, f"two {kind} children named {name!r}"
        seen.add((kind, name))
        for key, value in (meta.get("labels") or {}).items():
            if key.startswith("app.kubernetes.io/"):
                assert len(value) <= 63 and LABEL_VALUE.match(value), f"label {key}={value!r} is invalid"
        template = (child.get("spec") or {}).get("template")
        if template is not None:
            selector = child["spec"]["selector"]["matchLabels"]
            pod_labels = template["metadata"]["labels"]
            assert all(pod_labels.get(k) == v for k, v in selector.items()), "selector does not match pods"
        if kind == "Service":
            for k, v in (child["spec"].get("selector") or {}).items():
                assert len(v) <= 63 and LABEL_VALUE.match(v), f"selector {k}={v!r} is invalid"
        json.dumps(child)  # plain JSON, nothing the API client cannot send


def assert_invalid_status_writable(raw: JSON, message: str, status_model: type[BaseModel]) -> None:
    """The Accepted=False status of an invalid spec passes the status schema (bounded message)."""
    status, events = invalid_status(raw.get("status") or {}, raw["metadata"]["generation"], message)
    parsed = status_model.model_validate(status)
    accepted = next(c for c in parsed.conditions if c.type == "Accepted")  # type: ignore[attr-defined]
    assert accepted.status == "False" and accepted.reason == "InvalidSpec"
    assert accepted.message, "an invalid spec must say why"
    assert events and all(len(message) <= 32768 for _, _, message in events)


@FUZZ
@given(s.resource("MCPServer", s.mcpserver_spec))
def test_mcpserver_any_spec_is_accepted_with_valid_children_or_refused_with_a_status(raw: JSON) -> None:
    parsed, problems = parse_and_validate(raw)
    assert isinstance(parsed, MCPServer), problems  # schema-valid input always parses
    if problems:
        assert_invalid_status_writable(raw, format_problems(problems), MCPServerStatus)
        return
    children = mcpserver_build.build_children(parsed, owner(raw), SETTINGS, None)
    assert_valid_children(children)
    assert children == mcpserver_build.build_children(parsed, owner(raw), SETTINGS, None)
    names = mcpserver_build.Names(parsed.metadata.name)
    kinds = {(c["kind"], c["metadata"]["name"]) for c in children}
    assert ("Service", names.proxy) in kinds and ("StatefulSet", names.server) in kinds
    url = mcpserver_build.service_url(parsed, SETTINGS)
    assert url.startswith(f"http://{names.proxy}.{parsed.metadata.namespace}.svc."), url
    config_maps = [c for c in children if c["kind"] == "ConfigMap"]
    for secret in parsed.spec.secrets or []:  # secrets are references, never copied into a ConfigMap
        sts = next(c for c in children if c["kind"] == "StatefulSet")
        env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {
            "name": secret.env_name,
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
        } in env
    assert all(len(json.dumps(c)) < 3_000_000 for c in config_maps)


REMOTE_FOUND: JSON = {  # what this property found once; kept as explicit examples
    "apiVersion": "mcp-operator.dev/v1alpha1",
    "kind": "MCPRemoteProxy",
    "metadata": {"name": "a", "namespace": "a", "uid": "u", "generation": 1},
    "spec": {"remoteUrl": "https://a.example.com"},
}


@FUZZ
@given(s.resource("MCPRemoteProxy", s.remote_proxy_spec))
@example(
    {**REMOTE_FOUND, "spec": {**REMOTE_FOUND["spec"], "headerForward": {"addPlaintextHeaders": {"0": "\r"}}}}
)
@example(
    {
        **REMOTE_FOUND,
        "spec": {
            **REMOTE_FOUND["spec"],
            "headerForward": {
                "addHeadersFromSecret": [
                    {"headerName": "X-Team", "valueSecretRef": {"name": "s", "key": "k"}},
                    {"headerName": "x-team", "valueSecretRef": {"name": "s", "key": "k"}},
                ]
            },
        },
    }
)
@example(
    {
        **REMOTE_FOUND,
        "spec": {
            **REMOTE_FOUND["spec"],
            "oidcConfig": {
                "inline": {"issuer": "https://i.example"},
                "resourceUrl": "https://u:p@x.example/",
            },
        },
    }
)
def test_remote_proxy_any_spec_is_accepted_with_valid_children_or_refused_with_a_status(raw: JSON) -> None:
    parsed, problems = parse_and_validate(raw)
    assert isinstance(parsed, MCPRemoteProxy), problems
    if problems:
        assert_invalid_status_writable(raw, format_problems(problems), MCPRemoteProxyStatus)
        return
    rendered = mcpremoteproxy_build.render_config(parsed, SETTINGS, None, None)
    children = mcpremoteproxy_build.build_children(parsed, owner(raw), SETTINGS, rendered)
    assert_valid_children(children)
    again = mcpremoteproxy_build.render_config(parsed, SETTINGS, None, None)
    assert again.digest == rendered.digest
    names = mcpremoteproxy_build.Names(parsed.metadata.name)
    url = mcpremoteproxy_build.service_url(parsed, SETTINGS)
    assert url.startswith(f"http://{names.proxy}.{parsed.metadata.namespace}.svc."), url


@FUZZ
@given(
    s.resource("VirtualMCPServer", s.vmcp_spec),
    st.lists(s.dns_label(), max_size=5, unique=True),
)
def test_vmcp_any_spec_is_accepted_with_valid_children_or_refused_with_a_status(
    raw: JSON, members: list[str]
) -> None:
    parsed, problems = parse_and_validate(raw)
    assert isinstance(parsed, VirtualMCPServer), problems
    if problems:
        assert_invalid_status_writable(raw, format_problems(problems), VirtualMCPServerStatus)
        return
    backends = [
        Backend(Member("MCPServer", m, f"http://{m}.ns.svc.cluster.local:8080/mcp", "streamable-http", None))
        for m in members
    ]
    config = virtualmcpserver_build.build_vmcp_config(parsed, backends, SETTINGS)
    children = virtualmcpserver_build.build_children(parsed, owner(raw), SETTINGS, config)
    assert_valid_children(children)
    names = virtualmcpserver_build.Names(parsed.metadata.name)
    url = virtualmcpserver_build.service_url(parsed, SETTINGS)
    assert url.startswith(f"http://{names.gateway}.{parsed.metadata.namespace}.svc."), url


@FUZZ
@given(s.resource("EmbeddingServer", s.embedding_server_spec))
def test_embedding_server_any_spec_is_accepted_with_valid_children_or_refused_with_a_status(
    raw: JSON,
) -> None:
    parsed, problems = parse_and_validate(raw)
    assert isinstance(parsed, EmbeddingServer), problems  # schema-valid input always parses
    if problems:
        assert_invalid_status_writable(raw, format_problems(problems), EmbeddingServerStatus)
        return
    children = embeddingserver_build.build_children(parsed, owner(raw))
    assert_valid_children(children)
    assert children == embeddingserver_build.build_children(parsed, owner(raw))
    sts = next(c for c in children if c["kind"] == "StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["args"][:4] == ["--model-id", parsed.spec.model, "--port", str(parsed.spec.port)]
    assert len({e["name"] for e in container["env"]}) == len(container["env"]), "an env name given twice"
    url = embeddingserver_build.service_url(parsed, SETTINGS)
    assert url.endswith(f":{parsed.spec.port}"), url
