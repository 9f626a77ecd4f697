"""Pure builders of an MCPServer's children: golden files per transport, and the rules they encode.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/reconcilers``
and review the diff.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.podtemplate import CONFIG_HASH_ANNOTATION, OWNED_LABELS
from api.proxy_config import dump_proxy_config
from api.validation import validate
from controller.reconcilers.mcpserver_build import (
    Names,
    build_children,
    build_proxy_config,
    proxy_replicas,
    server_replicas,
    service_url,
)
from tests.support.builders import SETTINGS, assert_matches_golden, owner_ref

OWNER = owner_ref("MCPServer", "fetch", "0000-1111")


def make(name: str = "fetch", **spec: Any) -> MCPServer:
    return MCPServer.model_validate(
        {
            "metadata": {"name": name, "namespace": "tools", "uid": "0000-1111", "generation": 1},
            "spec": {"image": "ghcr.io/example/fetch:1", **spec},
        }
    )


def kinds(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


@pytest.mark.parametrize(
    ("case", "spec"),
    [
        ("stdio", {"args": ["--verbose"], "env": [{"name": "LOG", "value": "debug"}]}),
        (
            "sse",
            {
                "transport": "sse",
                "mcpPort": 9000,
                "secrets": [{"name": "api", "key": "token", "targetEnvName": "API_TOKEN"}],
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "proxyResources": {"requests": {"cpu": "50m"}},
            },
        ),
        (
            "streamable-http",
            {
                "transport": "streamable-http",
                "replicas": 2,
                "podDisruptionBudget": {"minAvailable": 1},
                "podTemplateSpec": {"spec": {"nodeSelector": {"pool": "mcp"}}},
                "resourceOverrides": {"proxyService": {"annotations": {"team": "a"}}},
            },
        ),
    ],
)
def test_children_match_golden_files(case: str, spec: dict[str, Any]) -> None:
    objs = build_children(make(**spec), OWNER, SETTINGS, None)
    assert_matches_golden(objs, f"mcpserver-{case}.yaml")


def test_exact_children_per_transport() -> None:
    assert kinds(build_children(make(), OWNER, SETTINGS, None)) == [
        ("ConfigMap", "fetch-proxy"),
        ("ServiceAccount", "fetch-proxy"),
        ("ServiceAccount", "fetch-server"),
        ("StatefulSet", "fetch-server"),
        ("Deployment", "fetch"),
        ("Service", "fetch"),
        ("Role", "fetch-proxy"),
        ("RoleBinding", "fetch-proxy"),
    ]
    http = kinds(build_children(make(transport="sse", serviceAccount="existing"), OWNER, SETTINGS, None))
    assert ("Service", "fetch-server") in http and ("Role", "fetch-proxy") not in http
    assert ("ServiceAccount", "fetch-server") not in http  # the user's own account is used


def test_every_child_is_owned_and_labelled() -> None:
    for obj in build_children(make(transport="sse"), OWNER, SETTINGS, None):
        meta = obj["metadata"]
        assert meta["ownerReferences"] == [OWNER]
        assert meta["namespace"] == "tools"
        for key in ("name", "instance", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in meta["labels"]


def test_pod_security_defaults() -> None:
    objs = {o["kind"]: o for o in build_children(make(), OWNER, SETTINGS, None)}
    restricted = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    # The server runs as a numeric non-root user whatever the image's USER (root, a name or a number).
    server_user = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}
    assert objs["StatefulSet"]["spec"]["template"]["spec"]["securityContext"] == {**restricted, **server_user}
    assert objs["Deployment"]["spec"]["template"]["spec"]["securityContext"] == restricted
    for kind in ("StatefulSet", "Deployment"):
        pod = objs[kind]["spec"]["template"]["spec"]
        security = pod["containers"][0]["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
    assert objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ]
    assert objs["StatefulSet"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_user_pod_template_may_choose_the_server_user_and_home() -> None:
    patch = {"spec": {"securityContext": {"runAsUser": 65532, "runAsGroup": None, "fsGroup": None}}}
    server = make(podTemplateSpec=patch, env=[{"name": "HOME", "value": "/data"}])
    sts = next(o for o in build_children(server, OWNER, SETTINGS, None) if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532 and "fsGroup" not in pod["securityContext"]
    assert [e["value"] for e in pod["containers"][0]["env"] if e["name"] == "HOME"] == ["/data"]


def test_user_pod_template_may_ask_for_a_token() -> None:
    server = make(podTemplateSpec={"spec": {"automountServiceAccountToken": True}})
    sts = next(o for o in build_children(server, OWNER, SETTINGS, None) if o["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_config_hash_changes_exactly_with_the_proxy_config() -> None:
    def digest(server: MCPServer, tool_config: MCPToolConfig | None = None) -> str:
        dep = next(
            o for o in build_children(server, OWNER, SETTINGS, tool_config) if o["kind"] == "Deployment"
        )
        return str(dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])

    base = digest(make())
    assert digest(make(image="ghcr.io/example/fetch:2")) == base
    assert digest(make(env=[{"name": "A", "value": "1"}], args=["x"])) == base
    assert digest(make(proxyPort=9000)) != base
    assert digest(make(audit={"enabled": True})) != base
    tools = MCPToolConfig.model_validate({"metadata": {"name": "t"}, "spec": {"toolsFilter": ["fetch"]}})
    assert digest(make(), tools) != base
    authz = {"type": "inline", "inline": {"policies": ["permit(principal, action, resource);"]}}
    assert digest(make(authzConfig=authz)) != base, "a change of the policies rolls the proxy"


def test_proxy_config_carries_the_policies() -> None:
    authz = {
        "type": "inline",
        "inline": {"policies": ["permit(principal, action, resource);"]},
        "groupClaimName": "teams",
    }
    rendered = build_proxy_config(make(authzConfig=authz), SETTINGS, None).authz
    assert rendered is not None
    assert (rendered.policies, rendered.group_claim_name) == (
        ("permit(principal, action, resource);",),
        "teams",
    )
    assert build_proxy_config(make(), SETTINGS, None).authz is None


def test_proxy_config_carries_filter_and_no_secret_values() -> None:
    tools = MCPToolConfig.model_validate(
        {
            "metadata": {"name": "t"},
            "spec": {"toolsFilter": ["fetch"], "toolsOverride": {"fetch": {"name": "get_url"}}},
        }
    )
    server = make(transport="streamable-http", secrets=[{"name": "s", "key": "k"}])
    config = build_proxy_config(server, SETTINGS, tools)
    assert config.tool_filter.allow == ("fetch",)
    assert config.tool_filter.overrides["fetch"].name == "get_url"
    assert "valueFrom" not in json.dumps(config.model_dump(mode="json"))


@given(
    transport=st.sampled_from(["stdio", "sse", "streamable-http"]),
    replicas=st.one_of(st.none(), st.integers(0, 5)),
    backend=st.one_of(st.none(), st.integers(0, 5)),
)
def test_replica_rules(transport: str, replicas: int | None, backend: int | None) -> None:
    spec: dict[str, Any] = {"transport": transport}
    if replicas is not None:
        spec["replicas"] = replicas
    if backend is not None:
        spec["backendReplicas"] = backend
    server = make(**spec)
    if replicas == 0:
        assert proxy_replicas(server) == 0 and server_replicas(server) == 0
    elif transport == "stdio":
        assert proxy_replicas(server) == 1 and server_replicas(server) == 1
    else:
        assert proxy_replicas(server) == replicas  # None leaves the count to an HPA
        assert server_replicas(server) == (backend if backend is not None else replicas)


def test_url_follows_port_and_mode() -> None:
    assert service_url(make(), SETTINGS) == "http://fetch.tools.svc.cluster.local:8080/mcp"
    assert service_url(make(proxyMode="sse"), SETTINGS).endswith(":8080/sse")
    assert service_url(make(transport="sse", proxyPort=9001), SETTINGS).endswith(":9001/sse")


def test_names_that_would_overflow_are_shortened_with_a_stable_hash() -> None:
    assert validate(make("n" * 46)) == []
    assert Names("n" * 45).server == "n" * 45 + "-server"  # fits the StatefulSet's 52: unchanged
    long = Names("n" * 46)
    assert (
        len(long.server) == 52 and long.server.endswith("-server") and long.server_pod == f"{long.server}-0"
    )
    assert long.server == Names("n" * 46).server != Names("n" * 47).server
    assert Names("a.b").proxy != Names("a-b").proxy == "a-b"  # dots are not allowed in Service names


def _bearer() -> MCPExternalAuthConfig:
    return MCPExternalAuthConfig.model_validate(
        {
            "metadata": {"name": "upstream"},
            "spec": {"type": "bearerToken", "bearerToken": {"tokenSecretRef": {"name": "api", "key": "tok"}}},
        }
    )


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
def test_outbound_credential_is_an_env_reference_filled_from_the_secret(transport: str) -> None:
    objs = build_children(make(transport=transport), OWNER, SETTINGS, None, _bearer())
    by_kind = {o["kind"]: o for o in objs if o["kind"] in ("ConfigMap", "Deployment")}
    config = json.loads(by_kind["ConfigMap"]["data"]["proxy.json"])
    variable = config["backend"]["auth"]["tokenSecretRef"]["env"]
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    source = {"secretKeyRef": {"name": "api", "key": "tok"}}
    assert {"name": variable, "valueFrom": source} in container["env"]
    without = build_children(make(transport=transport), OWNER, SETTINGS, None)
    digest = by_kind["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    other = next(o for o in without if o["kind"] == "Deployment")
    assert other["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] != digest
    assert "env" not in other["spec"]["template"]["spec"]["containers"][0]


def test_stdio_server_with_a_credential_is_a_problem_naming_the_field() -> None:
    problems = validate(make(externalAuthConfigRef={"name": "upstream"}))
    assert [p.field for p in problems] == ["spec.externalAuthConfigRef"]
    assert validate(make(transport="sse", externalAuthConfigRef={"name": "upstream"})) == []


def test_resource_overrides_patch_the_proxy_pod_its_account_and_service_only() -> None:
    overrides = {
        "proxyDeployment": {
            "labels": {"team": "a"},
            "annotations": {"owner": "a@example.com"},
            "podTemplateMetadataOverrides": {"labels": {"mesh": "off"}, "annotations": {"scrape": "true"}},
            "env": [{"name": "LOG_LEVEL", "value": "debug"}],
            "imagePullSecrets": [{"name": "registry"}],
        },
        "proxyService": {"labels": {"expose": "internal"}},
    }
    server = make(transport="sse", resourceOverrides=overrides)
    objs = {(o["kind"], o["metadata"]["name"]): o for o in build_children(server, OWNER, SETTINGS, None)}
    deployment = objs[("Deployment", "fetch")]
    assert deployment["metadata"]["labels"]["team"] == "a"
    assert deployment["metadata"]["annotations"] == {"owner": "a@example.com"}
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["mesh"] == "off"
    assert (
        pod["metadata"]["annotations"]["scrape"] == "true"
        and CONFIG_HASH_ANNOTATION in pod["metadata"]["annotations"]
    )
    assert pod["spec"]["containers"][0]["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert objs[("ServiceAccount", "fetch-proxy")]["imagePullSecrets"] == [{"name": "registry"}]
    assert objs[("Service", "fetch")]["metadata"]["labels"]["expose"] == "internal"
    # The server's pod, account and headless Service are not the proxy's: nothing of it reaches them.
    server_pod = objs[("StatefulSet", "fetch-server")]["spec"]["template"]
    assert "mesh" not in server_pod["metadata"]["labels"] and "imagePullSecrets" not in server_pod["spec"]
    assert "imagePullSecrets" not in objs[("ServiceAccount", "fetch-server")]
    assert "expose" not in objs[("Service", "fetch-server")]["metadata"]["labels"]


def test_owned_labels_are_the_labels_the_validator_protects() -> None:
    """api.podtemplate refuses overrides of OWNED_LABELS: they must be exactly the labels children carry."""
    for obj in build_children(make(transport="sse"), OWNER, SETTINGS, None):
        owned = {k for k in obj["metadata"]["labels"] if k.startswith("app.kubernetes.io/")}
        assert owned == set(OWNED_LABELS), obj["kind"]


def test_endpoint_prefix_and_trusted_proxy_headers_reach_the_proxy_config() -> None:
    plain = build_proxy_config(make(transport="sse", mcpPort=9000), SETTINGS, None)
    assert (plain.endpoint_prefix, plain.trust_proxy_headers) == ("", False)
    server = make(transport="sse", mcpPort=9000, endpointPrefix="/github", trustProxyHeaders=True)
    config = build_proxy_config(server, SETTINGS, None)
    assert (config.endpoint_prefix, config.trust_proxy_headers) == ("/github", True)
    assert '"endpointPrefix":"/github"' in dump_proxy_config(config)  # the proxy's file spells it so


def _server_pod(server: MCPServer) -> dict[str, Any]:
    statefulset = next(o for o in build_children(server, OWNER, SETTINGS, None) if o["kind"] == "StatefulSet")
    pod: dict[str, Any] = statefulset["spec"]["template"]["spec"]
    return pod


def test_volumes_mount_host_directories_into_the_server_container_only() -> None:
    volumes = [
        {"name": "data", "hostPath": "/srv/data", "mountPath": "/data", "readOnly": True},
        {"name": "cache", "hostPath": "/var/cache/mcp", "mountPath": "/cache"},
    ]
    pod = _server_pod(make(volumes=volumes))
    assert pod["volumes"] == [
        {"name": "data", "hostPath": {"path": "/srv/data"}},
        {"name": "cache", "hostPath": {"path": "/var/cache/mcp"}},
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": True},
        {"name": "cache", "mountPath": "/cache", "readOnly": False},
    ]
    assert "volumes" not in _server_pod(make())


def test_volume_clashes_are_refused_naming_the_entry() -> None:
    volumes = [
        {"name": "data", "hostPath": "/srv/a", "mountPath": "/data"},
        {"name": "more", "hostPath": "/srv/b", "mountPath": "/data/"},
    ]
    patch = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}
    problems = validate(make(volumes=volumes, podTemplateSpec=patch))
    assert [p.field for p in problems] == [
        "spec.volumes[0].mountPath",
        "spec.volumes[0].name",
        "spec.volumes[1].mountPath",
    ]
    assert "also a volume of spec.podTemplateSpec" in problems[1].message


def _egress_policies(server: MCPServer) -> list[dict[str, Any]]:
    return [o for o in build_children(server, OWNER, SETTINGS, None) if o["kind"] == "NetworkPolicy"]


def test_the_none_profile_denies_the_server_pods_all_egress() -> None:
    [policy] = _egress_policies(make(permissionProfile={"type": "builtin", "name": "none"}))
    server_pods = _server_pod_labels(make())
    assert policy["metadata"]["name"] == "fetch-server"
    assert policy["metadata"]["ownerReferences"] == [OWNER]
    assert policy["spec"]["policyTypes"] == ["Egress"] and "egress" not in policy["spec"]  # no rule: deny all
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= server_pods.items()
    assert _egress_policies(make(permissionProfile={"name": "network"})) == []
    assert _egress_policies(make()) == []


def _server_pod_labels(server: MCPServer) -> dict[str, str]:
    statefulset = next(o for o in build_children(server, OWNER, SETTINGS, None) if o["kind"] == "StatefulSet")
    labels: dict[str, str] = statefulset["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize(
    ("profile", "field", "message"),
    [
        (
            {"type": "configmap", "name": "profiles", "key": "p.json"},
            "spec.permissionProfile.type",
            "configmap",
        ),
        ({"name": "strict"}, "spec.permissionProfile.name", "'strict' is not a builtin profile"),
    ],
)
def test_unsupported_permission_profiles_are_refused_naming_the_field(
    profile: dict[str, str], field: str, message: str
) -> None:
    problems = validate(make(permissionProfile=profile))
    assert [p.field for p in problems] == [field] and message in problems[0].message


def _proxy_service(server: MCPServer) -> dict[str, Any]:
    objs = build_children(server, OWNER, SETTINGS, None)
    service: dict[str, Any] = next(
        o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "fetch"
    )
    return service


def test_session_affinity_reaches_the_proxy_service_only_when_set() -> None:
    assert _proxy_service(make(sessionAffinity="ClientIP"))["spec"]["sessionAffinity"] == "ClientIP"
    assert "sessionAffinity" not in _proxy_service(make())["spec"]  # the Service's default (None)
