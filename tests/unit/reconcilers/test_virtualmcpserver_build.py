"""Pure builders of a VirtualMCPServer: golden children, the rendered gateway config, what rolls the pods,
outbound auth selection, and the status (phases and the gateway-owned health keys).

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/reconcilers``
and review the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcptoolconfig import MCPToolConfig
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.validation import parse_and_validate, validate
from api.virtualmcpserver import VirtualMCPServer
from api.vmcp_config import VMCPConfig
from controller.reconcilers.refs import Missing
from controller.reconcilers.render import SecretEnv, outbound_auth
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import WorkloadState
from controller.reconcilers.virtualmcpserver import index_vmcp_external_auth, index_vmcp_tool_config
from controller.reconcilers.virtualmcpserver_build import (
    Backend,
    Member,
    auth_config_name,
    build_children,
    build_operational,
    build_vmcp_config,
    member_from_raw,
    service_url,
)
from controller.reconcilers.virtualmcpserver_status import GATEWAY_OWNED, Observed, vmcp_status
from tests.support.builders import SETTINGS, assert_matches_golden, owner_ref

OWNER = owner_ref("VirtualMCPServer", "gw", "0000-2222")
ALPHA = Member("MCPServer", "alpha", "http://alpha.tools.svc.cluster.local:8080/mcp", "streamable-http", None)
BETA = Member("MCPServer", "beta", "http://beta.tools.svc.cluster.local:8080/sse", "sse", "beta-key")
SAAS = Member(
    "MCPRemoteProxy", "saas", "http://saas.tools.svc.cluster.local:8080/mcp", "streamable-http", None
)


def make(name: str = "gw", **spec: Any) -> VirtualMCPServer:
    return VirtualMCPServer.model_validate(
        {
            "metadata": {"name": name, "namespace": "tools", "uid": "0000-2222", "generation": 3},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}, **spec},
        }
    )


def auth_config(name: str, spec: dict[str, Any]) -> MCPExternalAuthConfig:
    return MCPExternalAuthConfig.model_validate(
        {"metadata": {"name": name, "namespace": "tools"}, "spec": spec}
    )


FULL_SPEC: dict[str, Any] = {
    "incomingAuth": {
        "type": "oidc",
        "oidcConfig": {"inline": {"issuer": "https://issuer.example.com", "audience": "gw"}},
    },
    "outgoingAuth": {
        "source": "discovered",
        "backends": {
            "saas": {"type": "externalAuthConfigRef", "externalAuthConfigRef": {"name": "saas-key"}}
        },
    },
    "config": {
        "aggregation": {
            "conflictResolution": "priority",
            "conflictResolutionConfig": {"priorityOrder": ["saas", "alpha"]},
            "tools": [
                {"workload": "alpha", "filter": ["fetch"], "overrides": {"fetch": {"name": "get"}}},
                {"workload": "beta", "excludeAll": True},
            ],
        },
        "operational": {"timeouts": {"default": "20s", "perWorkload": {"saas": "1m"}}},
    },
    "replicas": 2,
    "podDisruptionBudget": {"maxUnavailable": "50%"},
    "resources": {"limits": {"memory": "256Mi"}},
    "podTemplateSpec": {"spec": {"nodeSelector": {"pool": "gateways"}}},
}


def full_children() -> tuple[list[dict[str, Any]], SecretEnv]:
    secrets = SecretEnv()
    bearer = {"type": "bearerToken", "bearerToken": {"tokenSecretRef": {"name": "saas", "key": "token"}}}
    header = {
        "type": "headerInjection",
        "headerInjection": {"headerName": "X-API-Key", "valueSecretRef": {"name": "beta", "key": "key"}},
    }
    backends = [
        Backend(ALPHA),
        Backend(BETA, outbound_auth(auth_config("beta-key", header).spec, secrets)),
        Backend(SAAS, outbound_auth(auth_config("saas-key", bearer).spec, secrets)),
    ]
    vmcp = make(**FULL_SPEC)
    config = build_vmcp_config(vmcp, backends, SETTINGS)
    return build_children(vmcp, OWNER, SETTINGS, config, secrets.env()), secrets


def test_children_match_golden_file() -> None:
    objs, _ = full_children()
    assert_matches_golden(objs, "virtualmcpserver-full.yaml")
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ConfigMap", "gw-vmcp"),
        ("ServiceAccount", "gw-vmcp"),
        ("Role", "gw-vmcp"),
        ("RoleBinding", "gw-vmcp"),
        ("Deployment", "gw"),
        ("Service", "gw"),
        ("PodDisruptionBudget", "gw"),
    ]


def test_config_map_holds_a_loadable_config_without_secret_values(tmp_path: Path) -> None:
    objs, secrets = full_children()
    text = objs[0]["data"]["vmcp.yaml"]
    path = tmp_path / "vmcp.yaml"
    path.write_text(text)
    from api.vmcp_config import load_vmcp_config  # noqa: PLC0415 - the gateway's own loader

    config = load_vmcp_config(path)
    assert [(b.name, b.url, b.transport) for b in config.backends] == [
        (m.name, m.url, m.transport) for m in (ALPHA, BETA, SAAS)
    ]
    assert config.aggregation.conflict_resolution == "priority"
    assert config.aggregation.conflict_resolution_config.priority_order == ["saas", "alpha"]
    alpha_tools = config.aggregation.tools_for("alpha")
    assert alpha_tools is not None and alpha_tools.filter == ["fetch"]
    assert alpha_tools.overrides["fetch"].name == "get"
    assert config.operational.timeouts.call == 20.0 and config.operational.timeouts.call_for("saas") == 60.0
    assert config.incoming_auth.type == "oidc" and config.incoming_auth.oidc is not None
    assert config.incoming_auth.oidc.audience == "gw"
    # Credentials are environment variables filled from secretKeyRef; the file only names them.
    env = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[:3] == [
        {"name": "VMCP_NAME", "value": "gw"},
        {"name": "VMCP_NAMESPACE", "value": "tools"},
        {"name": "VMCP_CONFIG_MAP", "value": "gw-vmcp"},
    ]
    env = env[3:]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env} == {"beta", "saas"}
    saas = config.backend("saas")
    assert saas is not None and saas.auth is not None and saas.auth.type == "bearerToken"
    assert saas.auth.token_secret_ref.env in {e["name"] for e in env}
    assert [e["name"] for e in env] == [e["name"] for e in secrets.env()]


def _deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == "Deployment")


def test_backend_changes_do_not_touch_the_deployment_but_start_up_settings_do() -> None:
    vmcp = make()

    def deployment(
        backends: list[Backend], v: VirtualMCPServer = vmcp, s: ReconcilerSettings = SETTINGS
    ) -> Any:
        return _deployment(build_children(v, OWNER, s, build_vmcp_config(v, backends, s)))

    base = deployment([Backend(ALPHA)])
    moved = Member("MCPServer", "alpha", "http://alpha.tools.svc.cluster.local:9090/mcp", "sse", None)
    for backends in ([], [Backend(ALPHA), Backend(SAAS)], [Backend(moved)]):
        assert deployment(backends) == base
    policy = make(config={"aggregation": {"conflictResolution": "manual"}})
    assert deployment([Backend(ALPHA)], policy) == base, "the aggregation policy is hot-reloaded too"
    authz = {
        "type": "anonymous",
        "authzConfig": {"type": "inline", "inline": {"policies": ["forbid(principal, action, resource);"]}},
    }
    with_authz = make(incomingAuth=authz)
    assert deployment([Backend(ALPHA)], with_authz) == base, "the authorization policies are hot-reloaded"
    rendered = build_vmcp_config(with_authz, [Backend(ALPHA)], SETTINGS).incoming_auth.authz
    assert rendered is not None and rendered.policies == ("forbid(principal, action, resource);",)

    def digest(d: dict[str, Any]) -> str:
        return str(d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])

    oidc = make(incomingAuth=FULL_SPEC["incomingAuth"])
    assert digest(deployment([Backend(ALPHA)], oidc)) != digest(base)
    image = ReconcilerSettings(proxy_image="ghcr.io/mcp-operator/mcp-operator:next")
    assert digest(deployment([Backend(ALPHA)], vmcp, image)) != digest(base)


@pytest.mark.parametrize(
    ("outgoing", "member", "expected"),
    [
        (None, BETA, "beta-key"),
        (None, ALPHA, None),
        ({"source": "inline"}, BETA, None),
        ({"source": "discovered"}, BETA, "beta-key"),
        ({"default": {"type": "unauthenticated"}}, BETA, None),
        (
            {"default": {"type": "externalAuthConfigRef", "externalAuthConfigRef": {"name": "all"}}},
            ALPHA,
            "all",
        ),
        (
            {
                "source": "inline",
                "default": {"type": "unauthenticated"},
                "backends": {"beta": {"type": "discovered"}},
            },
            BETA,
            "beta-key",
        ),
    ],
)
def test_outbound_auth_selection(
    outgoing: dict[str, Any] | None, member: Member, expected: str | None
) -> None:
    spec = {"outgoingAuth": outgoing} if outgoing is not None else {}
    assert auth_config_name(make(**spec), member) == expected


def test_member_from_raw_reads_url_transport_and_auth() -> None:
    raw = {
        "metadata": {"name": "beta"},
        "spec": {"transport": "sse", "externalAuthConfigRef": {"name": "k"}},
        "status": {"url": "http://beta.tools.svc.cluster.local:8080/sse"},
    }
    assert member_from_raw("MCPServer", raw) == Member("MCPServer", "beta", raw["status"]["url"], "sse", "k")
    pending = member_from_raw("MCPRemoteProxy", {"metadata": {"name": "r"}, "spec": "not a dict"})
    assert pending.url is None and pending.transport == "streamable-http" and pending.external_auth is None


def test_tool_visibility_and_missing_tool_config_fail_closed() -> None:
    deny = make(config={"aggregation": {"defaultToolVisibility": "deny", "tools": [{"workload": "alpha"}]}})
    config = build_vmcp_config(deny, [Backend(ALPHA), Backend(SAAS)], SETTINGS)
    assert _hidden(config) == {"saas"}
    everything = make(config={"aggregation": {"excludeAllTools": True}})
    assert _hidden(build_vmcp_config(everything, [Backend(ALPHA), Backend(SAAS)], SETTINGS)) == {
        "alpha",
        "saas",
    }

    ref = make(config={"aggregation": {"tools": [{"workload": "alpha", "toolConfigRef": {"name": "safe"}}]}})
    assert _hidden(build_vmcp_config(ref, [Backend(ALPHA)], SETTINGS, {"safe": None})) == {"alpha"}
    tool_config = MCPToolConfig.model_validate(
        {"metadata": {"name": "safe", "namespace": "tools"}, "spec": {"toolsFilter": ["read"]}}
    )
    config = build_vmcp_config(ref, [Backend(ALPHA)], SETTINGS, {"safe": tool_config})
    alpha = config.aggregation.tools_for("alpha")
    assert alpha is not None and alpha.filter == ["read"] and not alpha.exclude_all


def _hidden(config: VMCPConfig) -> set[str]:
    return {t.workload for t in config.aggregation.tools if t.exclude_all}


def test_name_limit_and_pod_template_problems() -> None:
    assert validate(make()) == []
    assert validate(make(name="g" * 64)) == []  # children get shortened names instead
    bad = validate(make(podTemplateSpec={"spec": {"containers": "vmcp"}}))
    assert [p.field for p in bad] == ["spec.podTemplateSpec.spec.containers"]


def test_service_account_not_created_when_one_is_named() -> None:
    vmcp = make(serviceAccount="shared")
    objs = build_children(vmcp, OWNER, SETTINGS, build_vmcp_config(vmcp, [], SETTINGS))
    assert "ServiceAccount" not in {o["kind"] for o in objs}
    assert _deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"] == "shared"
    binding = next(o for o in objs if o["kind"] == "RoleBinding")
    assert binding["subjects"][0]["name"] == "shared"


def test_image_pull_secrets_reach_the_pods_with_the_templates_and_only_the_own_on_the_account() -> None:
    vmcp = make(
        imagePullSecrets=[{"name": "registry"}, {"name": "mirror"}],
        podTemplateSpec={"spec": {"imagePullSecrets": [{"name": "mirror"}, {"name": "team"}]}},
    )
    objs = build_children(vmcp, OWNER, SETTINGS, build_vmcp_config(vmcp, [], SETTINGS))
    pod_secrets = _deployment(objs)["spec"]["template"]["spec"]["imagePullSecrets"]
    assert sorted(s["name"] for s in pod_secrets) == ["mirror", "registry", "team"]
    account = next(o for o in objs if o["kind"] == "ServiceAccount")
    assert account["imagePullSecrets"] == [{"name": "registry"}, {"name": "mirror"}]
    plain = build_children(make(), OWNER, SETTINGS, build_vmcp_config(make(), [], SETTINGS))
    assert "imagePullSecrets" not in _deployment(plain)["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in next(o for o in plain if o["kind"] == "ServiceAccount")


def test_gateway_may_patch_only_its_own_status_and_read_only_its_own_config() -> None:
    objs = build_children(make(), OWNER, SETTINGS, build_vmcp_config(make(), [], SETTINGS))
    role = next(o for o in objs if o["kind"] == "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["mcp-operator.dev"],
            "resources": ["virtualmcpservers/status"],
            "resourceNames": ["gw"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["gw-vmcp"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    env = {
        e["name"]: e.get("value")
        for e in _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["VMCP_CONFIG_MAP"] == "gw-vmcp"


def test_indexes_name_every_referenced_config() -> None:
    raw = make(**FULL_SPEC).model_dump(by_alias=True, mode="json")
    raw["spec"]["outgoingAuth"]["default"] = {
        "type": "externalAuthConfigRef",
        "externalAuthConfigRef": {"name": "d"},
    }
    raw["spec"]["config"]["aggregation"]["tools"].append(
        {"workload": "saas", "toolConfigRef": {"name": "tc"}}
    )
    assert index_vmcp_external_auth(raw) == ["tools/d", "tools/saas-key"]
    assert index_vmcp_tool_config(raw) == ["tools/tc"]
    assert index_vmcp_tool_config({"metadata": {"namespace": "x"}, "spec": None}) == []


# ---- status ------------------------------------------------------------------------------------------

URL = service_url(make(), SETTINGS)
READY_GATEWAY = WorkloadState(True, True, 1, "Deployment gw is ready")


def status(previous: dict[str, Any], **observed: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "group": "team",
        "group_found": True,
        "group_ready": True,
        "members": [ALPHA, SAAS],
        "backends": frozenset({"alpha", "saas"}),
        "gateway": READY_GATEWAY,
    }
    result, _ = vmcp_status(previous, 3, URL, Observed(**{**base, **observed}), [])
    return result


def conditions(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in result["conditions"]}


def test_status_phases() -> None:
    missing = Missing("spec.groupRef.name", "GroupNotFound", "MCPGroup 'team' does not exist")
    gone = status({}, group_found=False, group_ready=False, missing=[missing])
    assert gone["phase"] == "Pending" and gone["discoveredBackends"] == []
    assert conditions(gone)["ResolvedRefs"] == ("False", "GroupNotFound")
    assert status({}, group_ready=False)["phase"] == "Pending"
    starting = status({}, gateway=WorkloadState(True, False, 0, "Deployment gw has no ready pod yet"))
    assert starting["phase"] == "Pending" and starting["message"] == "Deployment gw has no ready pod yet"
    ready = status({})
    assert ready["phase"] == "Ready" and ready["backendCount"] == 2 and ready["url"] == URL
    assert conditions(ready) == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
        "Ready": ("True", "Available"),
    }
    unresolved = Missing("spec.outgoingAuth", "ExternalAuthConfigNotFound", "MCPExternalAuthConfig 'k' ...")
    partial = status({}, missing=[unresolved], backends=frozenset({"alpha"}))
    assert partial["phase"] == "Degraded" and conditions(partial)["ResolvedRefs"][0] == "False"


def test_status_reads_gateway_health_and_never_writes_it() -> None:
    previous = {
        "discoveredBackends": [
            {
                "name": "alpha",
                "kind": "MCPServer",
                "status": "ready",
                "lastHealthCheck": "2026-01-01T00:00:00Z",
            },
            {"name": "saas", "kind": "MCPRemoteProxy", "status": "unavailable", "message": "refused"},
        ]
    }
    result = status(previous)
    assert result["phase"] == "Degraded" and result["backendCount"] == 1
    assert "backend 'saas' is unavailable" in result["message"]
    assert conditions(result)["Ready"] == ("True", "BackendsDegraded")
    for item in result["discoveredBackends"]:
        assert not set(item) & set(GATEWAY_OWNED), "health keys belong to the gateway's field manager"
    assert result["discoveredBackends"] == [
        {"name": "alpha", "kind": "MCPServer", "url": ALPHA.url},
        {"name": "saas", "kind": "MCPRemoteProxy", "url": SAAS.url},
    ]
    # A member without a URL is listed but is not a backend yet.
    waiting = Member("MCPServer", "new", None, "streamable-http", None)
    listed = status({}, members=[ALPHA, SAAS, waiting])["discoveredBackends"]
    assert {"name": "new", "kind": "MCPServer"} in listed


def test_failure_handling_reaches_the_gateway_config_with_toolhives_defaults_when_unset() -> None:
    failure = {  # healthCheckTimeout unset: its default stays
        "healthCheckInterval": "15s",
        "unhealthyThreshold": 4,
        "partialFailureMode": "best_effort",
        "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "1m30s"},
    }
    rendered = build_operational(make(config={"operational": {"failureHandling": failure}}))
    handling = rendered.failure_handling
    assert (handling.health_check_interval, handling.health_check_timeout) == (15.0, 10.0)
    assert (handling.unhealthy_threshold, handling.partial_failure_mode) == (4, "best_effort")
    breaker = handling.circuit_breaker
    assert (breaker.enabled, breaker.failure_threshold, breaker.timeout) == (True, 2, 90.0)
    default = build_operational(make()).failure_handling
    assert (default.health_check_interval, default.health_check_timeout) == (30.0, 10.0)
    assert (default.unhealthy_threshold, default.partial_failure_mode) == (3, "fail")
    assert (default.circuit_breaker.enabled, default.circuit_breaker.failure_threshold) == (False, 5)
    assert default.circuit_breaker.timeout == 60.0


def test_log_level_debug_starts_the_gateway_at_debug_and_rolls_its_pods() -> None:
    config = build_vmcp_config(make(), [], SETTINGS)
    quiet = _deployment(build_children(make(), OWNER, SETTINGS, config))
    loud_vmcp = make(config={"operational": {"logLevel": "debug"}})
    loud = _deployment(build_children(loud_vmcp, OWNER, SETTINGS, build_vmcp_config(loud_vmcp, [], SETTINGS)))
    quiet_args = quiet["spec"]["template"]["spec"]["containers"][0]["args"]
    loud_args = loud["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--log-level" not in quiet_args
    assert loud_args == [*quiet_args, "--log-level", "debug"]


def test_a_log_level_other_than_toolhives_is_refused_naming_the_field() -> None:
    _, problems = parse_and_validate(
        {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "VirtualMCPServer",
            "metadata": {"name": "gw"},
            "spec": {
                "groupRef": {"name": "team"},
                "incomingAuth": {"type": "anonymous"},
                "config": {"operational": {"logLevel": "trace"}},
            },
        }
    )
    assert [p.field for p in problems] == ["spec.config.operational.logLevel"]


def test_session_affinity_reaches_the_gateway_service() -> None:
    vmcp = make(sessionAffinity="ClientIP")
    objs = build_children(vmcp, OWNER, SETTINGS, build_vmcp_config(vmcp, [], SETTINGS))
    [service] = [o for o in objs if o["kind"] == "Service"]
    assert service["spec"]["sessionAffinity"] == "ClientIP"


def _rendered(vmcp: VirtualMCPServer) -> tuple[dict[str, Any], Any]:
    """The gateway's config file and Deployment for ``vmcp`` over backend ALPHA."""
    config = build_vmcp_config(vmcp, [Backend(ALPHA)], SETTINGS)
    return config.to_file_dict(), _deployment(build_children(vmcp, OWNER, SETTINGS, config))


def test_code_mode_reaches_the_gateway_config_when_enabled_and_is_hot_reloaded() -> None:
    off, deployment = _rendered(make())
    assert "codeMode" not in off  # the file of a gateway without code mode stays as it was
    disabled, _ = _rendered(make(config={"codeMode": {"enabled": False, "stepLimit": 5}}))
    assert "codeMode" not in disabled
    on, with_code_mode = _rendered(make(config={"codeMode": {"enabled": True}}))
    defaults = {"enabled": True, "stepLimit": 100000, "parallelMaxConcurrency": 10, "toolCallTimeout": "30s"}
    assert on["codeMode"] == defaults  # ToolHive's defaults
    assert with_code_mode == deployment, "the gateway reloads the code mode setting: no rollout"
    tuned = {"enabled": True, "stepLimit": 500, "parallelMaxConcurrency": 2, "toolCallTimeout": "1m30s"}
    rendered_tuned, _ = _rendered(make(config={"codeMode": tuned}))
    assert rendered_tuned["codeMode"] == {**tuned, "toolCallTimeout": "90s"}


def test_the_optimizer_reaches_the_gateway_config_and_is_hot_reloaded() -> None:
    off, deployment = _rendered(make())
    assert "optimizer" not in off  # the file of a gateway without the optimizer stays as it was
    on, with_optimizer = _rendered(make(config={"optimizer": {}}))
    assert on["optimizer"] == {"maxToolsToReturn": 8}  # ToolHive's default
    assert with_optimizer == deployment, "the gateway reloads the optimizer setting: no rollout"
    tuned, _ = _rendered(make(config={"optimizer": {"maxToolsToReturn": 3}}))
    assert tuned["optimizer"] == {"maxToolsToReturn": 3}


def test_semantic_search_settings_reach_the_gateway_config_typed_and_without_a_rollout() -> None:
    openai = {
        "embeddingProvider": "openai",
        "embeddingService": "http://llm-gateway.default.svc.cluster.local:8080/v1",
        "embeddingModel": "text-embedding-3-small",
        "embeddingServiceTimeout": "15s",
        "embeddingHeaders": {"x-cache-key": "toolhive-optimizer"},
        "hybridSearchSemanticRatio": "0.7",
        "semanticDistanceThreshold": "0.8",
    }
    vmcp = make(config={"optimizer": openai})
    config = build_vmcp_config(vmcp, [Backend(ALPHA)], SETTINGS)
    assert config.to_file_dict()["optimizer"] == {
        "maxToolsToReturn": 8,
        "embeddingService": "http://llm-gateway.default.svc.cluster.local:8080/v1",
        "embeddingProvider": "openai",
        "embeddingModel": "text-embedding-3-small",
        "embeddingHeaders": {"x-cache-key": "toolhive-optimizer"},
        "embeddingServiceTimeout": "15s",
        "hybridSearchSemanticRatio": 0.7,  # numbers in the gateway's file (strings in the CRD, as ToolHive's)
        "semanticDistanceThreshold": 0.8,
    }
    keywords = build_vmcp_config(make(config={"optimizer": {}}), [Backend(ALPHA)], SETTINGS)
    assert _deployment(build_children(vmcp, OWNER, SETTINGS, config)) == _deployment(
        build_children(make(config={"optimizer": {}}), OWNER, SETTINGS, keywords)
    ), "the gateway reloads the embedding settings: no rollout"
    # ToolHive's schema defaults of the provider and timeout say nothing without a service
    defaults = make(config={"optimizer": {"embeddingProvider": "tei", "embeddingServiceTimeout": "30s"}})
    assert build_vmcp_config(defaults, [Backend(ALPHA)], SETTINGS).to_file_dict()["optimizer"] == {
        "maxToolsToReturn": 8
    }


def test_toolhives_openai_optimizer_example_reaches_the_gateway_with_its_key_only_in_the_pod_env() -> None:
    path = Path(__file__).parents[2] / "fixtures/toolhive-examples"
    documents = yaml.safe_load_all(
        (path / "examples__operator__virtual-mcps__vmcp_optimizer_openai.yaml").read_text()
    )
    (example,) = [d for d in documents if d and d["kind"] == "VirtualMCPServer"]
    example["apiVersion"] = "mcp-operator.dev/v1beta1"
    vmcp, problems = parse_and_validate(example)
    assert problems == [] and vmcp is not None
    assert isinstance(vmcp, VirtualMCPServer)
    config = build_vmcp_config(vmcp, [Backend(ALPHA)], SETTINGS)
    optimizer = config.to_file_dict()["optimizer"]
    assert optimizer["embeddingProvider"] == "openai"
    assert optimizer["embeddingService"] == "http://llm-gateway.default.svc.cluster.local:8080/v1"
    assert optimizer["embeddingHeaders"] == {"x-cache-key": "toolhive-optimizer"}
    assert "sk-replace-me" not in config.to_yaml()
    (gateway,) = [
        c
        for c in _deployment(build_children(vmcp, OWNER, SETTINGS, config))["spec"]["template"]["spec"][
            "containers"
        ]
        if c["name"] == "vmcp"
    ]
    key = {"secretKeyRef": {"name": "embedding-api-key", "key": "apiKey"}}
    assert {"name": "OPENAI_API_KEY", "valueFrom": key} in gateway["env"]


def test_with_an_embedding_server_ref_the_optimizers_timeout_is_kept_for_its_url() -> None:
    tuned = {"embeddingServiceTimeout": "45s", "hybridSearchSemanticRatio": "0.7"}
    vmcp = make(embeddingServerRef={"name": "embeddings"}, config={"optimizer": tuned})
    url = "http://embeddings.team.svc.cluster.local:8080"
    config = build_vmcp_config(vmcp, [Backend(ALPHA)], SETTINGS, embedding_server_url=url)
    assert config.to_file_dict()["optimizer"] == {
        "maxToolsToReturn": 8,
        "embeddingService": url,
        "embeddingProvider": "tei",
        "embeddingServiceTimeout": "45s",
        "hybridSearchSemanticRatio": 0.7,
    }


def test_passthrough_headers_reach_the_gateway_config_and_the_spec_list_wins() -> None:
    def rendered(**spec: Any) -> list[str] | None:
        return build_vmcp_config(make(**spec), [], SETTINGS).passthrough_headers

    assert (
        rendered() is None and "passthroughHeaders" not in build_vmcp_config(make(), [], SETTINGS).to_yaml()
    )
    assert rendered(config={"passthroughHeaders": ["X-Api-Key"]}) == ["X-Api-Key"]
    both = {"passthroughHeaders": ["X-Tenant-Id"], "config": {"passthroughHeaders": ["X-Api-Key"]}}
    assert rendered(**both) == ["X-Tenant-Id"]
    # As in ToolHive: an empty spec list does not replace the config's.
    assert rendered(passthroughHeaders=[], config={"passthroughHeaders": ["X-Api-Key"]}) == ["X-Api-Key"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Authorization", "is a credential"),
        ("cookie", "is a credential"),
        ("Proxy-Authorization", "is a credential"),
        ("Host", "gateway-owned"),
        ("Connection", "hop-by-hop"),
        ("Content-Length", "hop-by-hop"),
        ("Mcp-Session-Id", "gateway-owned"),
        ("MCP-Protocol-Version", "gateway-owned"),
        ("Mcp-Param-Region", "gateway-owned"),
        ("X-Forwarded-For", "never forwarded"),
        ("traceparent", "never forwarded"),
        ("X Tenant", "is not a valid HTTP header name"),
        ("", "is not a valid HTTP header name"),
    ],
)
def test_a_refused_passthrough_header_is_named_with_its_field_in_spec_and_config(
    name: str, reason: str
) -> None:
    for spec, field in (
        ({"passthroughHeaders": ["X-Tenant-Id", name]}, "spec.passthroughHeaders[1]"),
        ({"config": {"passthroughHeaders": ["X-Tenant-Id", name]}}, "spec.config.passthroughHeaders[1]"),
    ):
        problems = validate(make(**spec))
        assert [p.field for p in problems] == [field], problems
        message = problems[0].message
        assert reason in message and ("remove it" in message or "fix its spelling" in message), message
    with pytest.raises(ValueError, match=r"passthroughHeaders\[0\]"):  # a hand-written gateway file too
        VMCPConfig.model_validate({"name": "gw", "passthroughHeaders": [name]})


def test_a_passthrough_header_listed_twice_is_refused() -> None:
    problems = validate(make(passthroughHeaders=["X-Tenant-Id", "x-tenant-id"]))
    assert [(p.field, "listed twice" in p.message) for p in problems] == [
        ("spec.passthroughHeaders[1]", True)
    ]


def test_toolhives_audit_block_maps_onto_the_gateways_audit_line() -> None:
    def rendered(audit: dict[str, Any] | None) -> dict[str, Any] | None:
        spec = {} if audit is None else {"config": {"audit": audit}}
        config = build_vmcp_config(make(**spec), [], SETTINGS).to_file_dict()
        return config.get("audit")

    assert rendered(None) is None  # the gateway's default: the line, without arguments
    assert rendered({}) == {"enabled": True, "includeArguments": False}  # present: on, as in ToolHive
    assert rendered({"enabled": False})["enabled"] is False  # type: ignore[index]
    full = {"enabled": True, "component": "vmcp", "includeRequestData": True, "maxDelegationDepth": 5}
    assert rendered(full) == {
        "enabled": True,
        "includeArguments": True,
        "maxDataSize": 1024,  # ToolHive's default
        "component": "vmcp",
    }


@pytest.mark.parametrize(
    ("audit", "field"),
    [
        ({"includeResponseData": True}, "spec.config.audit.includeResponseData"),
        ({"detectApplicationErrors": False}, "spec.config.audit.detectApplicationErrors"),
        ({"eventTypes": ["mcp_tool_call"]}, "spec.config.audit.eventTypes"),
        ({"excludeEventTypes": ["mcp_ping"]}, "spec.config.audit.excludeEventTypes"),
        ({"logFile": "/var/log/audit.log"}, "spec.config.audit.logFile"),
        ({"maxDataSize": -1}, "spec.config.audit.maxDataSize"),
    ],
)
def test_audit_settings_the_gateway_cannot_honour_are_refused_by_name(
    audit: dict[str, Any], field: str
) -> None:
    raw = make(config={"audit": {"enabled": True}}).model_dump(by_alias=True, exclude_none=True)
    raw["spec"]["config"]["audit"] = {"enabled": True, **audit}
    _, problems = parse_and_validate(raw)
    assert [p.field for p in problems] == [field], problems
    assert "remove it" in problems[0].message or "greater than or equal" in problems[0].message
