"""The rules of MCPOIDCConfig, MCPServerEntry and of ``oidcConfigRef`` on the workload kinds (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from api.validation import parse_and_validate

GV = "mcp-operator.dev/v1beta1"
ISSUER = "https://login.example.com/realms/staff"


def problems_of(kind: str, spec: dict[str, Any]) -> list[str]:
    obj, problems = parse_and_validate(
        {"apiVersion": GV, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    )
    assert obj is not None, problems
    return [str(p) for p in problems]


def entry(url: str, **spec: Any) -> dict[str, Any]:
    return {"remoteUrl": url, "transport": "streamable-http", "groupRef": {"name": "g"}, **spec}


def test_an_inline_oidc_config_is_accepted() -> None:
    inline = {"issuer": ISSUER, "jwksUrl": f"{ISSUER}/certs", "clientId": "c"}
    assert problems_of("MCPOIDCConfig", {"type": "inline", "inline": inline}) == []


def test_toolhives_ca_bundle_token_file_and_private_address_flag_are_accepted_on_every_kind() -> None:
    inline = {
        "issuer": ISSUER,
        "caBundleRef": {"configMapRef": {"name": "idp-ca", "key": "ca.pem"}},
        "jwksAuthTokenPath": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "protectedResourceAllowPrivateIP": True,
    }
    assert problems_of("MCPOIDCConfig", {"type": "inline", "inline": inline}) == []
    oidc = {"type": "inline", "inline": inline}
    assert problems_of("MCPServer", {"image": "i", "oidcConfig": oidc}) == []
    assert problems_of("MCPRemoteProxy", {"remoteUrl": "https://mcp.example.com", "oidcConfig": oidc}) == []
    incoming = {"type": "oidc", "oidcConfig": oidc}
    assert problems_of("VirtualMCPServer", {"groupRef": {"name": "g"}, "incomingAuth": incoming}) == []
    bad = {"type": "inline", "inline": {**inline, "jwksAuthTokenPath": "token"}}
    assert [p.split(":")[0] for p in problems_of("MCPServer", {"image": "i", "oidcConfig": bad})] == [
        "spec.oidcConfig.inline.jwksAuthTokenPath"
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "inline"}, "spec.inline: type is inline; set inline.issuer"),
        (
            {"type": "inline", "inline": {"issuer": "http://idp.example.com"}},
            "spec.inline.issuer: 'http://idp.example.com' is not https",
        ),
        (
            {"type": "inline", "inline": {"issuer": "https://u:p@idp.example.com"}},
            "spec.inline.issuer: must not carry credentials",
        ),
        (
            {"type": "inline", "inline": {"issuer": ISSUER, "clientSecretRef": {"name": "s", "key": "k"}}},
            "spec.inline.clientId: clientSecretRef is set without clientId",
        ),
        (
            {"type": "inline", "inline": {"issuer": ISSUER, "jwksAuthTokenPath": "token"}},
            "spec.inline.jwksAuthTokenPath: 'token' is not an absolute path to a file",
        ),
        (
            {"type": "inline", "inline": {"issuer": ISSUER, "jwksAuthTokenPath": "/var/run/../etc/token"}},
            "spec.inline.jwksAuthTokenPath: '/var/run/../etc/token' is not an absolute path to a file",
        ),
        (
            {"type": "inline", "inline": {"issuer": ISSUER, "jwksAuthTokenPath": "/var/run/secrets/"}},
            "spec.inline.jwksAuthTokenPath: '/var/run/secrets/' is not an absolute path to a file",
        ),
        (
            {
                "type": "inline",
                "inline": {
                    "issuer": ISSUER,
                    "caBundleRef": {"configMapRef": {"name": "ca", "optional": True}},
                },
            },
            "spec.inline.caBundleRef.configMapRef.optional: must not be true",
        ),
        (
            {
                "type": "inline",
                "inline": {
                    "issuer": "http://idp.example.com",
                    "insecureAllowHTTP": True,
                    "caBundleRef": {"configMapRef": {"name": "ca"}},
                },
            },
            "spec.inline.caBundleRef: verifies TLS: the issuer must be https://",
        ),
        (
            {"type": "kubernetesServiceAccount"},
            "spec.kubernetesServiceAccount: type is kubernetesServiceAccount; set kubernetesServiceAccount",
        ),
        (
            {
                "type": "kubernetesServiceAccount",
                "kubernetesServiceAccount": {},
                "inline": {"issuer": ISSUER},
            },
            "spec.inline: is only for type inline; remove it",
        ),
        (
            {"type": "kubernetesServiceAccount", "kubernetesServiceAccount": {"issuer": "http://kubernetes"}},
            "spec.kubernetesServiceAccount.issuer: 'http://kubernetes' is not https",
        ),
        (
            {
                "type": "kubernetesServiceAccount",
                "kubernetesServiceAccount": {"introspectionUrl": "https://kubernetes.default.svc/introspect"},
            },
            "spec.kubernetesServiceAccount.introspectionUrl: is not supported",
        ),
    ],
)
def test_an_unusable_oidc_config_is_refused_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of("MCPOIDCConfig", spec)), expected


def test_plain_http_is_accepted_only_when_asked_for() -> None:
    inline = {"issuer": "http://idp.tests.svc:8080", "insecureAllowHTTP": True}
    assert problems_of("MCPOIDCConfig", {"type": "inline", "inline": inline}) == []


REF = {"name": "idp", "audience": "fetch"}
INLINE = {"inline": {"issuer": ISSUER}}


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("MCPServer", {"image": "i", "oidcConfig": INLINE, "oidcConfigRef": REF}, "spec.oidcConfigRef"),
        (
            "MCPRemoteProxy",
            {"remoteUrl": "https://mcp.example.com/mcp", "oidcConfig": INLINE, "oidcConfigRef": REF},
            "spec.oidcConfigRef",
        ),
        (
            "VirtualMCPServer",
            {
                "groupRef": {"name": "g"},
                "incomingAuth": {"type": "oidc", "oidcConfig": INLINE, "oidcConfigRef": REF},
            },
            "spec.incomingAuth.oidcConfigRef",
        ),
        (
            "VirtualMCPServer",
            {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous", "oidcConfigRef": REF}},
            "spec.incomingAuth.oidcConfigRef",
        ),
        (
            "MCPServer",
            {"image": "i", "oidcConfigRef": {**REF, "resourceUrl": "https://u:p@mcp.example.com"}},
            "spec.oidcConfigRef.resourceUrl",
        ),
    ],
)
def test_oidc_config_ref_is_one_way_to_authenticate(kind: str, spec: dict[str, Any], field: str) -> None:
    assert [p for p in problems_of(kind, spec) if p.startswith(f"{field}: ")], problems_of(kind, spec)


def test_an_oidc_gateway_accepts_a_reference_instead_of_an_inline_provider() -> None:
    spec = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "oidc", "oidcConfigRef": REF}}
    assert problems_of("VirtualMCPServer", spec) == []
    missing = problems_of("VirtualMCPServer", {"groupRef": {"name": "g"}, "incomingAuth": {"type": "oidc"}})
    assert missing == [
        "spec.incomingAuth.oidcConfig: type is oidc; set oidcConfig.inline.issuer, or oidcConfigRef "
        "(a shared MCPOIDCConfig)"
    ]


def test_a_reference_needs_an_audience() -> None:
    _, problems = parse_and_validate(
        {
            "apiVersion": GV,
            "kind": "MCPServer",
            "metadata": {"name": "x"},
            "spec": {"image": "i", "oidcConfigRef": {"name": "idp"}},
        }
    )
    assert [p.field for p in problems] == ["spec.oidcConfigRef.audience"]


@pytest.mark.parametrize(
    ("url", "extra", "expected"),
    [
        ("http://127.0.0.1:8080/mcp", {}, "is loopback"),
        ("http://localhost/mcp", {"allowPrivateEndpoint": True}, "is loopback"),
        ("http://169.254.169.254/mcp", {"allowPrivateEndpoint": True}, "cloud metadata"),
        ("https://kubernetes.default.svc/mcp", {"allowPrivateEndpoint": True}, "Kubernetes API server"),
        ("http://10.1.2.3/mcp", {}, "set allowPrivateEndpoint: true"),
        ("http://docs.tools.svc.cluster.local/mcp", {}, "set allowPrivateEndpoint: true"),
        ("https://user:secret@mcp.example.com/mcp", {}, "must not carry credentials"),
    ],
)
def test_an_entry_url_passes_the_remote_proxy_url_rules(
    url: str, extra: dict[str, Any], expected: str
) -> None:
    problems = problems_of("MCPServerEntry", entry(url, **extra))
    assert len(problems) == 1 and problems[0].startswith("spec.remoteUrl: ") and expected in problems[0], (
        problems
    )


@pytest.mark.parametrize(
    "url",
    ["https://mcp.context7.com/mcp", "http://10.1.2.3:8080/mcp", "http://docs.tools.svc.cluster.local/mcp"],
)
def test_public_or_allowed_private_entries_are_accepted(url: str) -> None:
    assert problems_of("MCPServerEntry", entry(url, allowPrivateEndpoint=True)) == []


def test_an_entry_refuses_a_credential_in_a_plain_header() -> None:
    forward = {"addPlaintextHeaders": {"Authorization": "Bearer x"}}
    problems = problems_of("MCPServerEntry", entry("https://mcp.example.com/mcp", headerForward=forward))
    assert problems == [
        "spec.headerForward.addPlaintextHeaders[Authorization]: Authorization carries a credential; move it "
        "to addHeadersFromSecret (a Secret)"
    ]


def test_an_entry_needs_its_transport_and_group() -> None:
    _, problems = parse_and_validate(
        {
            "apiVersion": GV,
            "kind": "MCPServerEntry",
            "metadata": {"name": "x"},
            "spec": {"remoteUrl": "https://a.example"},
        }
    )
    assert {p.field for p in problems} == {"spec.transport", "spec.groupRef"}


@pytest.mark.parametrize(
    ("url", "ref", "expected"),
    [
        ("https://mcp.corp.example.com/mcp", {"configMapRef": {"name": "ca"}}, None),
        (
            "https://mcp.corp.example.com/mcp",
            {"configMapRef": {"name": "ca", "key": "bundle.pem", "optional": True}},
            "spec.caBundleRef.configMapRef.optional: must not be true",
        ),
        (
            "http://mcp.corp.example.com/mcp",
            {"configMapRef": {"name": "ca"}},
            "spec.caBundleRef: verifies TLS: the remoteUrl must be https://",
        ),
    ],
)
def test_a_ca_bundle_verifies_an_https_entry_and_is_never_optional(
    url: str, ref: dict[str, Any], expected: str | None
) -> None:
    spec = {
        "remoteUrl": url,
        "transport": "streamable-http",
        "groupRef": {"name": "g"},
        "caBundleRef": ref,
        "allowPrivateEndpoint": True,
    }
    found = problems_of("MCPServerEntry", spec)
    assert found == [] if expected is None else any(p.startswith(expected) for p in found), found
