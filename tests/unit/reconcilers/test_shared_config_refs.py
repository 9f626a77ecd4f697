"""``oidcConfigRef`` renders exactly what the equivalent inline ``oidcConfig`` renders, and an
MCPServerEntry becomes a gateway backend dialled directly (pure builders)."""

from __future__ import annotations

import json
from typing import Any

from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.mcpserverentry import MCPServerEntry
from api.virtualmcpserver import VirtualMCPServer
from api.vmcp_config import VMCPConfig
from controller.reconcilers import mcpremoteproxy_build, mcpserver_build, virtualmcpserver_build
from controller.reconcilers.ca_bundles import OIDC_CA_BUNDLE_ANNOTATION, with_ca_bundle_digest
from controller.reconcilers.children import spec_hash
from controller.reconcilers.oidc_refs import gateway_with_oidc, proxy_with_oidc, resolve_oidc_ref
from controller.reconcilers.refs import Missing
from controller.reconcilers.render import SecretEnv, header_forward
from controller.reconcilers.virtualmcpserver_build import Backend, build_vmcp_config, member_from_raw
from tests.support.builders import SETTINGS

GV = "mcp-operator.dev/v1beta1"
META = {"name": "x", "namespace": "tools", "uid": "0000-1111", "generation": 2}
PROVIDER = {
    "issuer": "http://idp.tools.svc:8080/realms/staff",
    "jwksUrl": "http://idp.tools.svc:8080/realms/staff/certs",
    "insecureAllowHTTP": True,
}
REF = {
    "name": "idp",
    "audience": "fetch",
    "scopes": ["openid", "mcp"],
    "resourceUrl": "https://mcp.example.com/x",
}
INLINE = {
    "type": "inline",
    "inline": {**PROVIDER, "audience": "fetch", "scopes": ["openid", "mcp"]},
    "resourceUrl": "https://mcp.example.com/x",
}


def oidc_config(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GV,
        "kind": "MCPOIDCConfig",
        "metadata": {"name": "idp", "namespace": "tools"},
        "spec": spec or {"type": "inline", "inline": PROVIDER},
    }


def test_a_reference_renders_the_proxy_config_of_the_equivalent_inline_block() -> None:
    base: dict[str, Any] = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http"}
    by_ref = MCPServer.model_validate({"metadata": META, "spec": {**base, "oidcConfigRef": REF}})
    inline = MCPServer.model_validate({"metadata": META, "spec": {**base, "oidcConfig": INLINE}})
    missing: list[Missing] = []
    resolved = resolve_oidc_ref(by_ref.spec.oidc_config_ref, oidc_config(), "spec.oidcConfigRef", missing)
    assert missing == [] and resolved is not None
    rendered = mcpserver_build.build_proxy_config(proxy_with_oidc(by_ref, resolved), SETTINGS, None)
    assert rendered == mcpserver_build.build_proxy_config(inline, SETTINGS, None)
    assert rendered.oidc is not None and rendered.oidc.audience == "fetch"
    assert rendered.oidc.issuer == PROVIDER["issuer"] and rendered.oidc.jwks_url == PROVIDER["jwksUrl"]
    assert resolved.hash == spec_hash(resolved.config.spec)


def test_the_jwks_token_file_is_rendered_and_the_service_account_token_mounted_for_it() -> None:
    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    base: dict[str, Any] = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http"}
    server = MCPServer.model_validate({"metadata": META, "spec": {**base, "oidcConfigRef": REF}})

    def pod_and_oidc(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        shared = oidc_config(type="inline", inline={**PROVIDER, "jwksAuthTokenPath": path})
        proxy = proxy_with_oidc(server, resolve_oidc_ref(server.spec.oidc_config_ref, shared, "ref", []))
        rendered = mcpserver_build.build_proxy_config(proxy, SETTINGS, None).oidc
        assert rendered is not None
        objects = mcpserver_build.build_children(proxy, {}, SETTINGS, None)
        return _deployment(objects)["spec"]["template"]["spec"], rendered.model_dump(
            by_alias=True, exclude_none=True
        )

    pod, oidc = pod_and_oidc(token)
    assert oidc["jwksAuthTokenPath"] == token and "caBundlePath" not in oidc
    assert pod["automountServiceAccountToken"] is True
    pod, oidc = pod_and_oidc("/etc/idp/token")  # a file the user mounts: the pod's own token stays out
    assert oidc["jwksAuthTokenPath"] == "/etc/idp/token"
    assert pod["automountServiceAccountToken"] is False


def test_a_ca_bundle_is_mounted_read_only_where_the_rendered_config_reads_it() -> None:
    bundle = {"configMapRef": {"name": "idp-ca", "key": "ca.pem"}}
    oidc = {"type": "inline", "inline": {**PROVIDER, "audience": "fetch", "caBundleRef": bundle}}
    base: dict[str, Any] = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http"}
    server = MCPServer.model_validate({"metadata": META, "spec": {**base, "oidcConfig": oidc}})
    remote = MCPRemoteProxy.model_validate(
        {"metadata": META, "spec": {"remoteUrl": "https://mcp.example.com/mcp", "oidcConfig": oidc}}
    )
    gateway = VirtualMCPServer.model_validate(
        {
            "metadata": META,
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "oidc", "oidcConfig": oidc}},
        }
    )
    rendered = mcpremoteproxy_build.render_config(remote, SETTINGS, None, None)
    config = virtualmcpserver_build.build_vmcp_config(gateway, [], SETTINGS)
    pods = [
        (mcpserver_build.build_children(server, {}, SETTINGS, None), "proxy"),
        (mcpremoteproxy_build.build_children(remote, {}, SETTINGS, rendered), "proxy"),
        (
            virtualmcpserver_build.build_children(gateway, {}, SETTINGS, config),
            virtualmcpserver_build.CONTAINER,
        ),
    ]
    paths = {
        mcpserver_build.build_proxy_config(server, SETTINGS, None).oidc.ca_bundle_path,  # type: ignore[union-attr]
        json.loads(rendered.text)["oidc"]["caBundlePath"],
        config.incoming_auth.oidc.ca_bundle_path,  # type: ignore[union-attr]
    }
    assert paths == {"/etc/mcp-operator-oidc-ca/ca.crt"}
    for objects, container_name in pods:
        pod = _deployment(objects)["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "oidc-ca-bundle")
        assert volume["configMap"] == {"name": "idp-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}
        container = next(c for c in pod["containers"] if c["name"] == container_name)
        mount = next(m for m in container["volumeMounts"] if m["name"] == "oidc-ca-bundle")
        assert mount == {"name": "oidc-ca-bundle", "mountPath": "/etc/mcp-operator-oidc-ca", "readOnly": True}


def test_the_ca_bundle_digest_rolls_the_deployment_only() -> None:
    objects = [{"kind": "ConfigMap"}, {"kind": "Deployment", "spec": {"template": {"metadata": {}}}}]
    assert with_ca_bundle_digest([dict(o) for o in objects], None) == objects
    annotated = with_ca_bundle_digest(objects, "abc")
    assert annotated[0] == {"kind": "ConfigMap"}
    assert annotated[1]["spec"]["template"]["metadata"]["annotations"] == {OIDC_CA_BUNDLE_ANNOTATION: "abc"}


def test_the_remote_proxy_and_the_gateway_render_a_reference_as_inline() -> None:
    remote: dict[str, Any] = {"remoteUrl": "https://mcp.example.com/mcp"}
    by_ref = MCPRemoteProxy.model_validate({"metadata": META, "spec": {**remote, "oidcConfigRef": REF}})
    inline = MCPRemoteProxy.model_validate({"metadata": META, "spec": {**remote, "oidcConfig": INLINE}})
    resolved = resolve_oidc_ref(by_ref.spec.oidc_config_ref, oidc_config(), "spec.oidcConfigRef", [])
    assert (
        mcpremoteproxy_build.render_config(proxy_with_oidc(by_ref, resolved), SETTINGS, None, None).text
        == mcpremoteproxy_build.render_config(inline, SETTINGS, None, None).text
    )
    group = {"groupRef": {"name": "team"}}
    gw_ref = VirtualMCPServer.model_validate(
        {"metadata": META, "spec": {**group, "incomingAuth": {"type": "oidc", "oidcConfigRef": REF}}}
    )
    gw_inline = VirtualMCPServer.model_validate(
        {"metadata": META, "spec": {**group, "incomingAuth": {"type": "oidc", "oidcConfig": INLINE}}}
    )
    resolved = resolve_oidc_ref(gw_ref.spec.incoming_auth.oidc_config_ref, oidc_config(), "f", [])
    by_ref_config = build_vmcp_config(gateway_with_oidc(gw_ref, resolved), [], SETTINGS)
    assert by_ref_config == build_vmcp_config(gw_inline, [], SETTINGS)
    assert by_ref_config.incoming_auth.type == "oidc" and by_ref_config.incoming_auth.oidc is not None


def test_an_invalid_config_is_reported_and_never_rendered_as_no_authentication() -> None:
    server = MCPServer.model_validate({"metadata": META, "spec": {"image": "i", "oidcConfigRef": REF}})
    for spec in ({"type": "kubernetesServiceAccount"}, {"type": "inline"}):
        missing: list[Missing] = []
        raw = oidc_config(**spec)
        assert resolve_oidc_ref(server.spec.oidc_config_ref, raw, "spec.oidcConfigRef", missing) is None
        assert [(m.field, m.reason) for m in missing] == [("spec.oidcConfigRef.name", "OIDCConfigInvalid")]
        assert "MCPOIDCConfig 'idp' is invalid" in missing[0].message
    # Not found: reported by the caller's reference table; nothing resolves.
    assert resolve_oidc_ref(server.spec.oidc_config_ref, None, "spec.oidcConfigRef", []) is None


def entry(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GV,
        "kind": "MCPServerEntry",
        "metadata": {"name": name, "namespace": "tools"},
        "spec": {"remoteUrl": url, "transport": "sse", "groupRef": {"name": "team"}, **spec},
    }


def test_an_entry_is_a_backend_dialled_at_its_remote_url_with_its_own_ssrf_setting() -> None:
    forward = {
        "addPlaintextHeaders": {"X-Client": "mcp-operator"},
        "addHeadersFromSecret": [{"headerName": "X-Tenant", "valueSecretRef": {"name": "t", "key": "k"}}],
    }
    raw = entry(
        "docs", "https://mcp.docs.example.com/sse", externalAuthConfigRef={"name": "a"}, headerForward=forward
    )
    member = member_from_raw("MCPServerEntry", raw)
    assert (member.url, member.transport, member.external_auth) == (
        "https://mcp.docs.example.com/sse",
        "sse",
        "a",
    )
    assert member.allow_private_endpoint is False
    private = member_from_raw(
        "MCPServerEntry", entry("lab", "http://10.0.0.5/sse", allowPrivateEndpoint=True)
    )
    assert private.allow_private_endpoint is True
    secrets = SecretEnv()
    server = member_from_raw(
        "MCPServer", {"metadata": {"name": "srv"}, "status": {"url": "http://srv:8080/mcp"}}
    )
    vmcp = VirtualMCPServer.model_validate(
        {"metadata": META, "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}}}
    )
    parsed_forward = header_forward(MCPServerEntry.model_validate(raw).spec.header_forward, secrets)
    config = build_vmcp_config(vmcp, [Backend(member, None, parsed_forward), Backend(server)], SETTINGS)
    backends = config.to_file_dict()["backends"]
    assert backends[0] == {
        "name": "docs",
        "url": "https://mcp.docs.example.com/sse",
        "transport": "sse",
        "headerForward": {
            "addPlaintextHeaders": {"X-Client": "mcp-operator"},
            "addHeadersFromSecret": [
                {"headerName": "X-Tenant", "valueSecretRef": {"env": secrets.env()[0]["name"]}}
            ],
        },
        "allowPrivateEndpoint": False,
    }
    # An in-cluster member keeps what the gateway always did (its Service is a private address).
    assert "allowPrivateEndpoint" not in backends[1]
    assert VMCPConfig.model_validate(config.to_file_dict()) == config
    assert secrets.env()[0]["valueFrom"] == {"secretKeyRef": {"name": "t", "key": "k"}}
    assert virtualmcpserver_build.auth_config_name(vmcp, member) == "a"


def test_a_service_account_reference_validates_the_cluster_tokens_with_the_pods_own_token() -> None:
    base: dict[str, Any] = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http"}
    server = MCPServer.model_validate({"metadata": META, "spec": {**base, "oidcConfigRef": REF}})
    cluster = oidc_config(
        type="kubernetesServiceAccount", kubernetesServiceAccount={"serviceAccount": "client"}
    )
    resolved = resolve_oidc_ref(server.spec.oidc_config_ref, cluster, "spec.oidcConfigRef", [])
    assert resolved is not None
    accepting = proxy_with_oidc(server, resolved)
    rendered = mcpserver_build.build_proxy_config(accepting, SETTINGS, None).oidc
    assert rendered is not None
    assert (rendered.issuer, rendered.audience, rendered.jwks_url) == (
        "https://kubernetes.default.svc",
        "fetch",
        None,
    )
    assert rendered.ca_bundle_path == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    assert rendered.jwks_auth_token_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert rendered.subject == "system:serviceaccount:tools:client"  # the workload's namespace by default
    pod = _deployment(mcpserver_build.build_children(accepting, {}, SETTINGS, None))["spec"]["template"][
        "spec"
    ]
    assert pod["automountServiceAccountToken"] is True  # the token sent for the JWKS and the cluster CA
    plain = _deployment(mcpserver_build.build_children(server, {}, SETTINGS, None))["spec"]["template"][
        "spec"
    ]
    assert plain["automountServiceAccountToken"] is False

    outside = oidc_config(
        type="kubernetesServiceAccount",
        kubernetesServiceAccount={
            "issuer": "https://oidc.example.com/cluster",
            "namespace": "agents",
            "useClusterAuth": False,
        },
    )
    remote = MCPRemoteProxy.model_validate(
        {"metadata": META, "spec": {"remoteUrl": "https://mcp.example.com/mcp", "oidcConfigRef": REF}}
    )
    resolved = resolve_oidc_ref(remote.spec.oidc_config_ref, outside, "spec.oidcConfigRef", [])
    text = mcpremoteproxy_build.render_config(proxy_with_oidc(remote, resolved), SETTINGS, None, None).text
    oidc = json.loads(text)["oidc"]
    assert (
        oidc["issuer"] == "https://oidc.example.com/cluster"
        and oidc["subject"] == "system:serviceaccount:agents:"
    )
    assert "caBundlePath" not in oidc and "jwksAuthTokenPath" not in oidc


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment")
