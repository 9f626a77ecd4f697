"""validate() catches what the schema cannot, naming the field and saying the fix."""

from __future__ import annotations

from typing import Any

import pytest

from api.problems import Problem, format_problems
from api.validation import parse_and_validate

SERVER = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPServer", "metadata": {"name": "s"}}
PROXY = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPRemoteProxy", "metadata": {"name": "p"}}
VMCP = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "VirtualMCPServer", "metadata": {"name": "v"}}
TOOLS = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPToolConfig", "metadata": {"name": "t"}}
AUTH = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPExternalAuthConfig", "metadata": {"name": "a"}}
VMCP_BASE = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}}
SECRET = {"name": "creds", "key": "token"}

# (case id, object, field named by the problem, a word of the fix the message must contain)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "mcpPort with stdio",
        {**SERVER, "spec": {"image": "i", "mcpPort": 9000}},
        "spec.mcpPort",
        "remove",
    ),
    (
        "stdio with several backend replicas",
        {**SERVER, "spec": {"image": "i", "backendReplicas": 2}},
        "spec.backendReplicas",
        "remove",
    ),
    (
        "secret key that is no env name",
        {**SERVER, "spec": {"image": "i", "secrets": [{"name": "s", "key": "api-token"}]}},
        "spec.secrets[0].targetEnvName",
        "set targetEnvName",
    ),
    (
        "two secrets set one variable",
        {
            **SERVER,
            "spec": {
                "image": "i",
                "secrets": [
                    {"name": "a", "key": "k", "targetEnvName": "TOKEN"},
                    {"name": "b", "key": "TOKEN"},
                ],
            },
        },
        "spec.secrets[1].targetEnvName",
        "own targetEnvName",
    ),
    (
        "secret and env set one variable",
        {
            **SERVER,
            "spec": {
                "image": "i",
                "env": [{"name": "TOKEN", "value": "x"}],
                "secrets": [{"name": "a", "key": "TOKEN"}],
            },
        },
        "spec.secrets[0].targetEnvName",
        "remove it from one",
    ),
    (
        "sidecar port clashes with mcpPort",
        {
            **SERVER,
            "spec": {
                "image": "i",
                "transport": "streamable-http",
                "mcpPort": 9000,
                "podTemplateSpec": {
                    "spec": {"containers": [{"name": "side", "ports": [{"containerPort": 9000}]}]}
                },
            },
        },
        "spec.podTemplateSpec.spec.containers[0].ports[0].containerPort",
        "change this port",
    ),
    (
        "podTemplateSpec with a stray key",
        {**SERVER, "spec": {"image": "i", "podTemplateSpec": {"containers": []}}},
        "spec.podTemplateSpec",
        "only metadata and spec",
    ),
    (
        "request above limit",
        {
            **SERVER,
            "spec": {"image": "i", "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "2"}}},
        },
        "spec.resources.requests.cpu",
        "lower the request",
    ),
    (
        "oidc without inline block",
        {**SERVER, "spec": {"image": "i", "oidcConfig": {"type": "inline"}}},
        "spec.oidcConfig.inline",
        "set inline.issuer",
    ),
    (
        "oidc issuer over plain http",
        {**SERVER, "spec": {"image": "i", "oidcConfig": {"inline": {"issuer": "http://idp.example.com"}}}},
        "spec.oidcConfig.inline.issuer",
        "insecureAllowHTTP",
    ),
    (
        "remote url with credentials",
        {**PROXY, "spec": {"remoteUrl": "https://user:pw@mcp.example.com/mcp"}},
        "spec.remoteUrl",
        "Secret",
    ),
    (
        "remote url private without opt-in",
        {**PROXY, "spec": {"remoteUrl": "http://10.1.2.3:8080/mcp"}},
        "spec.remoteUrl",
        "allowPrivateEndpoint: true",
    ),
    (
        "remote url in-cluster without opt-in",
        {**PROXY, "spec": {"remoteUrl": "http://mcp.tools.svc.cluster.local/mcp"}},
        "spec.remoteUrl",
        "allowPrivateEndpoint: true",
    ),
    (
        "remote url on cloud metadata",
        {**PROXY, "spec": {"remoteUrl": "http://169.254.169.254/latest", "allowPrivateEndpoint": True}},
        "spec.remoteUrl",
        "always refused",
    ),
    (
        "credential in a plaintext header",
        {
            **PROXY,
            "spec": {
                "remoteUrl": "https://x.example.com",
                "headerForward": {"addPlaintextHeaders": {"Authorization": "Bearer x"}},
            },
        },
        "spec.headerForward.addPlaintextHeaders[Authorization]",
        "addHeadersFromSecret",
    ),
    (
        "header both plain and from secret",
        {
            **PROXY,
            "spec": {
                "remoteUrl": "https://x.example.com",
                "headerForward": {
                    "addPlaintextHeaders": {"X-Tenant": "a"},
                    "addHeadersFromSecret": [{"headerName": "x-tenant", "valueSecretRef": SECRET}],
                },
            },
        },
        "spec.headerForward.addHeadersFromSecret[0].headerName",
        "keep only one",
    ),
    (
        "reserved header",
        {
            **PROXY,
            "spec": {
                "remoteUrl": "https://x.example.com",
                "headerForward": {"addPlaintextHeaders": {"Host": "a"}},
            },
        },
        "spec.headerForward.addPlaintextHeaders[Host]",
        "remove it",
    ),
    (
        "prefix format without placeholder",
        {
            **VMCP,
            "spec": {
                **VMCP_BASE,
                "config": {"aggregation": {"conflictResolutionConfig": {"prefixFormat": "x_"}}},
            },
        },
        "spec.config.aggregation.conflictResolutionConfig.prefixFormat",
        "{workload}_",
    ),
    (
        "priority without order",
        {**VMCP, "spec": {**VMCP_BASE, "config": {"aggregation": {"conflictResolution": "priority"}}}},
        "spec.config.aggregation.conflictResolutionConfig.priorityOrder",
        "list the backends",
    ),
    (
        "oidc incoming auth without provider",
        {**VMCP, "spec": {**VMCP_BASE, "incomingAuth": {"type": "oidc"}}},
        "spec.incomingAuth.oidcConfig",
        "set oidcConfig",
    ),
    (
        "toolConfigRef and inline filter together",
        {
            **VMCP,
            "spec": {
                **VMCP_BASE,
                "config": {
                    "aggregation": {
                        "tools": [{"workload": "a", "toolConfigRef": {"name": "t"}, "filter": ["x"]}]
                    }
                },
            },
        },
        "spec.config.aggregation.tools[0].toolConfigRef",
        "either toolConfigRef or filter",
    ),
    (
        "same workload twice",
        {
            **VMCP,
            "spec": {
                **VMCP_BASE,
                "config": {"aggregation": {"tools": [{"workload": "a"}, {"workload": "a"}]}},
            },
        },
        "spec.config.aggregation.tools[1].workload",
        "merge",
    ),
    (
        "manual overrides clash across backends",
        {
            **VMCP,
            "spec": {
                **VMCP_BASE,
                "config": {
                    "aggregation": {
                        "conflictResolution": "manual",
                        "tools": [
                            {"workload": "a", "overrides": {"fetch": {"name": "get"}}},
                            {"workload": "b", "overrides": {"fetch": {"name": "get"}}},
                        ],
                    }
                },
            },
        },
        "spec.config.aggregation.tools[1].overrides[fetch].name",
        "distinct name",
    ),
    (
        "outgoing auth ref missing",
        {
            **VMCP,
            "spec": {**VMCP_BASE, "outgoingAuth": {"backends": {"a": {"type": "externalAuthConfigRef"}}}},
        },
        "spec.outgoingAuth.backends[a].externalAuthConfigRef",
        "set externalAuthConfigRef.name",
    ),
    (
        "tool override outside the filter",
        {**TOOLS, "spec": {"toolsFilter": ["a"], "toolsOverride": {"b": {"name": "c"}}}},
        "spec.toolsOverride[b]",
        "add it to toolsFilter",
    ),
    (
        "two tools renamed alike",
        {**TOOLS, "spec": {"toolsOverride": {"a": {"name": "x"}, "b": {"name": "x"}}}},
        "spec.toolsOverride[a].name",
        "distinct names",
    ),
    (
        "auth type without its block",
        {**AUTH, "spec": {"type": "headerInjection"}},
        "spec.headerInjection",
        "set the headerInjection block",
    ),
    (
        "auth block of another type",
        {
            **AUTH,
            "spec": {
                "type": "bearerToken",
                "bearerToken": {"tokenSecretRef": SECRET},
                "headerInjection": {"headerName": "X-Key", "valueSecretRef": SECRET},
            },
        },
        "spec.headerInjection",
        "remove it",
    ),
    (
        "proxy pod overrides pinning the config hash",
        {
            **SERVER,
            "spec": {
                "image": "i",
                "resourceOverrides": {
                    "proxyDeployment": {
                        "podTemplateMetadataOverrides": {"annotations": {"mcp-operator.dev/config-hash": "x"}}
                    }
                },
            },
        },
        "spec.resourceOverrides.proxyDeployment.podTemplateMetadataOverrides.annotations"
        "[mcp-operator.dev/config-hash]",
        "remove it",
    ),
    (
        "proxy pod overrides taking a selector label",
        {
            **SERVER,
            "spec": {
                "image": "i",
                "resourceOverrides": {
                    "proxyDeployment": {
                        "podTemplateMetadataOverrides": {"labels": {"app.kubernetes.io/instance": "x"}}
                    }
                },
            },
        },
        "spec.resourceOverrides.proxyDeployment.podTemplateMetadataOverrides.labels[app.kubernetes.io/instance]",
        "remove it",
    ),
    (
        "remote proxy Service overrides taking the operator's label",
        {
            **PROXY,
            "spec": {
                "remoteUrl": "https://mcp.example.com/mcp",
                "resourceOverrides": {"proxyService": {"labels": {"app.kubernetes.io/managed-by": "me"}}},
            },
        },
        "spec.resourceOverrides.proxyService.labels[app.kubernetes.io/managed-by]",
        "remove it",
    ),
]


@pytest.mark.parametrize(("obj", "field", "fix"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cross_field_problem_names_field_and_fix(obj: dict[str, Any], field: str, fix: str) -> None:
    parsed, problems = parse_and_validate(obj)
    assert parsed is not None, problems
    matching = [p for p in problems if p.field == field]
    assert matching, f"expected a problem on {field}, got {format_problems(problems)}"
    assert any(fix in p.message for p in matching), matching


@pytest.mark.parametrize(
    "obj",
    [
        {**SERVER, "spec": {"image": "i", "transport": "sse", "mcpPort": 9000, "replicas": 3}},
        {**PROXY, "spec": {"remoteUrl": "https://mcp.example.com/mcp"}},
        {**PROXY, "spec": {"remoteUrl": "http://10.0.0.5/mcp", "allowPrivateEndpoint": True}},
        {
            **SERVER,
            "spec": {
                "image": "i",
                "resourceOverrides": {
                    "proxyDeployment": {
                        "labels": {"app.kubernetes.io/version": "1", "team": "a"},
                        "podTemplateMetadataOverrides": {"annotations": {"prometheus.io/scrape": "true"}},
                    }
                },
            },
        },
        {**VMCP, "spec": VMCP_BASE},
        {**AUTH, "spec": {"type": "unauthenticated"}},
        {**TOOLS, "spec": {"toolsFilter": ["a", "b"], "toolsOverride": {"a": {"name": "c"}}}},
        {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPGroup", "metadata": {"name": "g"}},
    ],
)
def test_valid_objects_have_no_problems(obj: dict[str, Any]) -> None:
    parsed, problems = parse_and_validate(obj)
    assert parsed is not None
    assert problems == []


def test_unparsable_object_reports_pydantic_errors_as_problems() -> None:
    parsed, problems = parse_and_validate({**SERVER, "spec": {"transport": "tcp", "proxyPort": 70000}})
    assert parsed is None
    fields = {p.field for p in problems}
    assert {"spec.image", "spec.transport", "spec.proxyPort"} <= fields
    image = next(p for p in problems if p.field == "spec.image")
    assert "set it" in image.message


def test_unknown_kind_is_a_problem() -> None:
    parsed, problems = parse_and_validate({"kind": "Pod"})
    assert parsed is None and len(problems) == 1
    assert problems[0].field == "kind" and "MCPServer" in problems[0].message


def test_problem_formats_field_first() -> None:
    assert str(Problem("spec.x", "bad; fix it")) == "spec.x: bad; fix it"
    assert format_problems([Problem("a", "b"), Problem("c", "d")]) == "a: b; c: d"


def test_stdio_with_several_proxy_replicas_is_accepted() -> None:
    # The reconciler caps it at one and says so in the StdioReplicaCapped condition.
    obj, problems = parse_and_validate({**SERVER, "spec": {"image": "i", "replicas": 3}})
    assert obj is not None and problems == []


def test_mcp_port_without_transport_says_the_transport_defaulted_to_stdio() -> None:
    # The API server stores the default (transport: stdio) when the manifest leaves it out, so the
    # message must explain the default rather than blame mcpPort alone.
    _, problems = parse_and_validate({**SERVER, "spec": {"image": "i", "mcpPort": 8080}})
    assert [p.field for p in problems] == ["spec.mcpPort"]
    message = problems[0].message
    assert "spec.transport is stdio (the default when spec.transport is unset)" in message
    assert "set spec.transport to streamable-http (or sse)" in message


def _failure_handling(failure: dict[str, Any]) -> list[Problem]:
    spec = {**VMCP_BASE, "config": {"operational": {"failureHandling": failure}}}
    obj, problems = parse_and_validate({**VMCP, "spec": spec})
    assert obj is not None, problems  # it parses: these are rules, refused as Accepted=False
    return problems


def test_failure_handling_with_toolhives_fields_is_accepted() -> None:
    assert (
        _failure_handling(
            {
                "healthCheckInterval": "15s",
                "healthCheckTimeout": "5s",
                "unhealthyThreshold": 2,
                "partialFailureMode": "best_effort",
                "circuitBreaker": {"enabled": True, "failureThreshold": 5, "timeout": "1m"},
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("failure", "field", "fix"),
    [
        ({"unhealthyThreshold": 0}, "unhealthyThreshold", "must be at least 1"),
        ({"unhealthyThreshold": -2}, "unhealthyThreshold", "must be at least 1"),
        ({"circuitBreaker": {"failureThreshold": 0}}, "circuitBreaker.failureThreshold", "at least 1"),
        ({"healthCheckInterval": "0s"}, "healthCheckInterval", "must be above zero; use e.g. 30s"),
        ({"healthCheckTimeout": "0ms"}, "healthCheckTimeout", "must be above zero"),
        ({"circuitBreaker": {"timeout": "500ms"}}, "circuitBreaker.timeout", "is under 1s; use e.g. 60s"),
    ],
)
def test_failure_handling_zero_thresholds_and_durations_are_refused_naming_the_field(
    failure: dict[str, Any], field: str, fix: str
) -> None:
    (problem,) = _failure_handling(failure)
    assert problem.field == f"spec.config.operational.failureHandling.{field}"
    assert fix in problem.message


def test_zero_backend_timeouts_are_refused_naming_the_field() -> None:
    timeouts = {"default": "0ms", "perWorkload": {"git": "0s", "time": "5s"}}
    spec = {**VMCP_BASE, "config": {"operational": {"timeouts": timeouts}}}
    _, problems = parse_and_validate({**VMCP, "spec": spec})
    assert [(p.field, p.message) for p in problems] == [
        ("spec.config.operational.timeouts.default", "'0ms' must be above zero; use e.g. 30s"),
        ("spec.config.operational.timeouts.perWorkload[git]", "'0s' must be above zero; use e.g. 30s"),
    ]


def test_failure_handling_refuses_an_unknown_mode_and_a_negative_duration() -> None:
    spec = {**VMCP_BASE, "config": {"operational": {"failureHandling": {"partialFailureMode": "bestEffort"}}}}
    obj, problems = parse_and_validate({**VMCP, "spec": spec})
    assert obj is None
    assert [p.field for p in problems] == ["spec.config.operational.failureHandling.partialFailureMode"]
    assert "best_effort" in problems[0].message
    spec = {**VMCP_BASE, "config": {"operational": {"failureHandling": {"healthCheckTimeout": "-5s"}}}}
    obj, problems = parse_and_validate({**VMCP, "spec": spec})
    assert [p.field for p in problems] == ["spec.config.operational.failureHandling.healthCheckTimeout"]


def _optimizer(optimizer: dict[str, Any], **spec: Any) -> list[Problem]:
    _, problems = parse_and_validate(
        {**VMCP, "spec": {**VMCP_BASE, **spec, "config": {"optimizer": optimizer}}}
    )
    return problems


def test_the_optimizer_with_keyword_search_is_accepted() -> None:
    assert _optimizer({}) == []
    assert _optimizer({"maxToolsToReturn": 50}) == []
    # ToolHive's defaults of its embedding fields, and a semantic share of zero, are accepted
    defaults = {
        "embeddingProvider": "tei",
        "embeddingServiceTimeout": "30s",
        "hybridSearchSemanticRatio": "0",
    }
    assert _optimizer(defaults) == []


@pytest.mark.parametrize("most", [0, 51, -1])
def test_max_tools_to_return_out_of_toolhives_range_is_refused(most: int) -> None:
    (problem,) = _optimizer({"maxToolsToReturn": most})
    assert problem.field == "spec.config.optimizer.maxToolsToReturn"
    assert problem.message == f"{most} is not 1 to 50; use e.g. 8"


OPENAI_OPTIMIZER = {  # ToolHive's vmcp_optimizer_openai.yaml
    "embeddingProvider": "openai",
    "embeddingService": "http://llm-gateway.default.svc.cluster.local:8080/v1",
    "embeddingModel": "text-embedding-3-small",
    "embeddingServiceTimeout": "15s",
    "embeddingHeaders": {"x-cache-key": "toolhive-optimizer"},
}


def test_semantic_search_settings_are_accepted() -> None:
    assert _optimizer(OPENAI_OPTIMIZER) == []
    tei = {"embeddingService": "http://embeddings.search.svc:8080", "embeddingModel": "ignored-by-tei"}
    assert _optimizer({**tei, "hybridSearchSemanticRatio": "0.7", "semanticDistanceThreshold": "0.8"}) == []
    assert _optimizer({"hybridSearchSemanticRatio": "1", "semanticDistanceThreshold": "2.0"}) == []
    assert _optimizer({"embeddingService": "https://10.0.0.7/"}) == []  # private addresses are the usual home


@pytest.mark.parametrize(
    ("optimizer", "field", "says"),
    [
        ({"hybridSearchSemanticRatio": "1.5"}, "hybridSearchSemanticRatio", "1.5 is not within 0.0 to 1.0"),
        (
            {"semanticDistanceThreshold": "2.5"},
            "semanticDistanceThreshold",
            "is not within 0.0 to 2.0; use e.g",
        ),
        ({"embeddingServiceTimeout": "0s"}, "embeddingServiceTimeout", "must be above zero; use e.g. 30s"),
        ({"embeddingService": "ftp://embeddings"}, "embeddingService", "only http and https are supported"),
        ({"embeddingService": "http://169.254.169.254/"}, "embeddingService", "cloud metadata"),
        ({"embeddingService": "http://127.0.0.1:8080"}, "embeddingService", "loopback"),
        ({"embeddingService": "http://u:p@embeddings"}, "embeddingService", "must not carry credentials"),
        ({"embeddingProvider": "openai", "embeddingModel": "m"}, "embeddingService", "is required with"),
        ({**OPENAI_OPTIMIZER, "embeddingModel": None}, "embeddingModel", "text-embedding-3-small"),
        (
            {"embeddingService": "http://e", "embeddingHeaders": {"x-k": "v"}},
            "embeddingHeaders",
            "set embeddingProvider: openai or remove it",
        ),
        (
            {**OPENAI_OPTIMIZER, "embeddingHeaders": {"Authorization": "Bearer sk-1"}},
            "embeddingHeaders[Authorization]",
            "give it to the gateway as OPENAI_API_KEY",
        ),
        ({**OPENAI_OPTIMIZER, "embeddingHeaders": {"api-key": "k"}}, "embeddingHeaders[api-key]", "a Secret"),
        (
            {**OPENAI_OPTIMIZER, "embeddingHeaders": {"Content-Type": "x"}},
            "embeddingHeaders[Content-Type]",
            "set by",
        ),
    ],
)
def test_bad_semantic_search_settings_are_refused_naming_the_field(
    optimizer: dict[str, Any], field: str, says: str
) -> None:
    (problem,) = _optimizer(optimizer)
    assert problem.field == f"spec.config.optimizer.{field}"
    assert says in problem.message


def test_an_embedding_server_ref_is_accepted_and_an_empty_name_is_refused() -> None:
    assert _optimizer({}, embeddingServerRef={"name": "embeddings"}) == []
    (problem,) = _optimizer({}, embeddingServerRef={"name": ""})
    assert problem.field == "spec.embeddingServerRef.name"


def test_an_openai_provider_cannot_go_with_an_embedding_server_ref() -> None:
    (problem,) = _optimizer(OPENAI_OPTIMIZER, embeddingServerRef={"name": "embeddings"})
    assert problem.field == "spec.config.optimizer.embeddingProvider"
    assert "remove embeddingServerRef and set embeddingService (openai)" in problem.message
    tuned = {"embeddingServiceTimeout": "45s", "hybridSearchSemanticRatio": "0.7"}
    assert _optimizer(tuned, embeddingServerRef={"name": "embeddings"}) == []


def _code_mode(code_mode: dict[str, Any]) -> list[Problem]:
    _, problems = parse_and_validate({**VMCP, "spec": {**VMCP_BASE, "config": {"codeMode": code_mode}}})
    return problems


def test_code_mode_with_toolhives_fields_is_accepted() -> None:
    assert _code_mode({"enabled": True}) == []
    tuned = {"enabled": True, "stepLimit": 100000, "parallelMaxConcurrency": 10, "toolCallTimeout": "30s"}
    assert _code_mode(tuned) == []


@pytest.mark.parametrize(
    ("code_mode", "field", "message"),
    [
        ({"stepLimit": 0}, "stepLimit", "0 must be at least 1; use e.g. 100000"),
        ({"parallelMaxConcurrency": 0}, "parallelMaxConcurrency", "0 is not 1 to 100; use e.g. 10"),
        ({"parallelMaxConcurrency": 101}, "parallelMaxConcurrency", "101 is not 1 to 100; use e.g. 10"),
        ({"toolCallTimeout": "0s"}, "toolCallTimeout", "'0s' must be above zero; use e.g. 30s"),
    ],
)
def test_code_mode_limits_out_of_range_are_refused_naming_the_field(
    code_mode: dict[str, Any], field: str, message: str
) -> None:
    (problem,) = _code_mode({"enabled": True, **code_mode})
    assert problem.field == f"spec.config.codeMode.{field}"
    assert problem.message == message
