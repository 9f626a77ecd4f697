"""Cross-field rules a structural schema cannot express, one function per kind.

Each rule returns Problems whose ``field`` is the JSON path to fix and whose message says how. The
reconcilers report them in an ``Accepted=False`` condition; nothing here does I/O (references to other
objects are resolved by the reconcilers).
"""

from __future__ import annotations

import re
from collections import Counter

from api.authz import authz_config_problems, authz_problems
from api.checks import (
    ca_bundle_problems,
    check_oidc,
    check_oidc_blocks,
    check_oidc_provider,
    check_resource_url,
    check_resources,
    check_service_account_oidc,
    header_name_problem,
    passthrough_header_problems,
    plain_header_problems,
    remote_url_problems,
)
from api.common import ENV_NAME_PATTERN, HeaderForward, MCPOIDCConfigReference, OIDCConfig, ToolOverride
from api.composite import CompositeToolConfig
from api.composite_rules import composite_tool_problems, composite_tools_problems
from api.embedded_auth import embedded_auth_problems
from api.mcpauthzconfig import MCPAuthzConfigSpec
from api.mcpexternalauthconfig import UNSUPPORTED_AUTH_TYPES, MCPExternalAuthConfigSpec
from api.mcpoidcconfig import MCPOIDCConfigSpec
from api.mcpremoteproxy import MCPRemoteProxySpec
from api.mcpserver import BUILTIN_PROFILES, MCPServerSpec
from api.mcpserverentry import MCPServerEntrySpec
from api.mcptelemetryconfig import inline_telemetry_rules
from api.mcptoolconfig import MCPToolConfigSpec
from api.optimizer_rules import optimizer_problems
from api.podtemplate import pod_template_problems, resource_overrides_problems
from api.problems import Problem
from api.scaling import disruption_budget_problems, scaling_problems
from api.virtualmcpserver import BackendAuthConfig, FailureHandling, GatewayAudit, VirtualMCPServerSpec
from api.vmcp_config import duration_seconds

__all__ = [
    "DEFAULT_MCP_PORT",
    "authz_config_rules",
    "composite_tool_definition_rules",
    "external_auth_config_rules",
    "mcp_oidc_config_rules",
    "mcp_remote_proxy_rules",
    "mcp_server_entry_rules",
    "mcp_server_rules",
    "tool_config_rules",
    "virtual_mcp_server_rules",
]

DEFAULT_MCP_PORT = 8080
_ENV_NAME = re.compile(ENV_NAME_PATTERN)


def mcp_server_rules(spec: MCPServerSpec) -> list[Problem]:
    problems: list[Problem] = []
    stdio = spec.transport == "stdio"
    if stdio and spec.mcp_port is not None:
        problems.append(
            Problem(
                "spec.mcpPort",
                "is set but spec.transport is stdio (the default when spec.transport is unset), which talks "
                "over stdin/stdout and listens on no port: set spec.transport to streamable-http (or sse) "
                "for a server that listens on mcpPort, or remove mcpPort",
            )
        )
    # spec.replicas > 1 on stdio is accepted and capped at 1 (reported by the StdioReplicaCapped
    # condition), so an HPA template shared with HTTP servers does not make a stdio server invalid.
    if stdio and spec.backend_replicas is not None and spec.backend_replicas > 1:
        problems.append(
            Problem(
                "spec.backendReplicas",
                "a stdio server runs exactly one pod; remove backendReplicas or set it to 1",
            )
        )
    problems += _env_and_secret_problems(spec)
    problems += check_resources(spec.resources, "spec.resources")
    problems += check_resources(spec.proxy_resources, "spec.proxyResources")
    problems += inbound_auth_problems(spec.oidc_config, spec.oidc_config_ref, "spec")
    problems += authz_problems(
        spec.authz_config, "spec.authzConfig", shared=spec.authz_config_ref is not None
    )
    if spec.pod_template_spec is not None:
        port = None if stdio else (spec.mcp_port or DEFAULT_MCP_PORT)
        problems += pod_template_problems(spec.pod_template_spec, mcp_port=port)
    problems += resource_overrides_problems(spec.resource_overrides)
    problems += scaling_problems(spec.session_storage, spec.rate_limiting)
    problems += disruption_budget_problems(spec.pod_disruption_budget, stdio=stdio)
    problems += _volume_problems(spec)
    problems += _permission_profile_problems(spec)
    if stdio and spec.external_auth_config_ref is not None:
        problems.append(
            Problem(
                "spec.externalAuthConfigRef",
                "a stdio server is reached through its stdin/stdout, which carries no credential: remove "
                "the reference, or serve the server over spec.transport sse or streamable-http",
            )
        )
    return problems


def _permission_profile_problems(spec: MCPServerSpec) -> list[Problem]:
    profile = spec.permission_profile
    if profile is None:
        return []
    if profile.type == "configmap":
        return [
            Problem(
                "spec.permissionProfile.type",
                "configmap is not supported yet; use {type: builtin, name: none} (no egress) or "
                "{type: builtin, name: network}, or a NetworkPolicy of your own for finer egress rules",
            )
        ]
    if profile.name not in BUILTIN_PROFILES:
        return [
            Problem(
                "spec.permissionProfile.name",
                f"{profile.name!r} is not a builtin profile; use none (no network egress) or network",
            )
        ]
    return []


def _volume_problems(spec: MCPServerSpec) -> list[Problem]:
    """Two mounts at one path, or a name the pod template patch also gives a volume (it would replace
    the host directory without a word)."""
    template_spec = (spec.pod_template_spec or {}).get("spec")
    patched = template_spec.get("volumes") if isinstance(template_spec, dict) else None
    taken = {v.get("name") for v in patched if isinstance(v, dict)} if isinstance(patched, list) else set()
    problems = []
    mounts = Counter(v.mount_path.rstrip("/") or "/" for v in spec.volumes or [])
    for i, volume in enumerate(spec.volumes or []):
        if volume.name in taken:
            problems.append(
                Problem(
                    f"spec.volumes[{i}].name",
                    f"{volume.name!r} is also a volume of spec.podTemplateSpec; rename one of them",
                )
            )
        if mounts[volume.mount_path.rstrip("/") or "/"] > 1:
            problems.append(
                Problem(f"spec.volumes[{i}].mountPath", f"{volume.mount_path!r} is mounted twice; keep one")
            )
    return problems


def _env_and_secret_problems(spec: MCPServerSpec) -> list[Problem]:
    problems = []
    plain = {e.name for e in spec.env or []}
    seen: dict[str, int] = {}
    for i, secret in enumerate(spec.secrets or []):
        field = f"spec.secrets[{i}]"
        if secret.target_env_name is None and not _ENV_NAME.match(secret.key):
            problems.append(
                Problem(
                    f"{field}.targetEnvName",
                    f"key {secret.key!r} is not a valid environment variable name; set targetEnvName",
                )
            )
            continue
        name = secret.env_name
        if name in seen:
            problems.append(
                Problem(
                    f"{field}.targetEnvName",
                    f"{name!r} is already set by spec.secrets[{seen[name]}]; give each its own targetEnvName",
                )
            )
        seen.setdefault(name, i)
        if name in plain:
            problems.append(
                Problem(
                    f"{field}.targetEnvName",
                    f"{name!r} is also set in spec.env; remove it from one of the two",
                )
            )
    return problems


def inbound_auth_problems(
    oidc: OIDCConfig | None, ref: MCPOIDCConfigReference | None, parent: str
) -> list[Problem]:
    """``oidcConfig`` and ``oidcConfigRef`` under ``parent``: each valid, and not both."""
    problems = check_oidc(oidc, f"{parent}.oidcConfig")
    if ref is not None:
        problems += check_resource_url(ref.resource_url, f"{parent}.oidcConfigRef.resourceUrl")
        if oidc is not None:
            problems.append(
                Problem(
                    f"{parent}.oidcConfigRef",
                    f"is set together with {parent}.oidcConfig; keep one of the two",
                )
            )
    return problems


def mcp_remote_proxy_rules(spec: MCPRemoteProxySpec) -> list[Problem]:
    problems = remote_url_problems(
        spec.remote_url, "spec.remoteUrl", allow_private=spec.allow_private_endpoint
    )
    problems += inbound_auth_problems(spec.oidc_config, spec.oidc_config_ref, "spec")
    problems += authz_problems(
        spec.authz_config, "spec.authzConfig", shared=spec.authz_config_ref is not None
    )
    problems += check_resources(spec.resources, "spec.resources")
    if spec.pod_template_spec is not None:
        problems += pod_template_problems(spec.pod_template_spec)
    problems += resource_overrides_problems(spec.resource_overrides)
    problems += scaling_problems(spec.session_storage, None)
    problems += disruption_budget_problems(spec.pod_disruption_budget)
    problems += header_forward_problems(spec.header_forward)
    return problems


def header_forward_problems(forward: HeaderForward | None) -> list[Problem]:
    """``spec.headerForward``: valid header names, no credential in plain text, each header once."""
    if forward is None:
        return []
    problems = []
    plain = {name.lower() for name in forward.add_plaintext_headers or {}}
    problems += plain_header_problems(
        forward.add_plaintext_headers or {},
        "spec.headerForward.addPlaintextHeaders",
        "move it to addHeadersFromSecret (a Secret)",
    )
    from_secret: set[str] = set()
    for i, header in enumerate(forward.add_headers_from_secret or []):
        field = f"spec.headerForward.addHeadersFromSecret[{i}].headerName"
        bad = header_name_problem(header.header_name, field)
        if bad is not None:
            problems.append(bad)
        elif header.header_name.lower() in plain:
            problems.append(
                Problem(field, f"{header.header_name} is also in addPlaintextHeaders; keep only one")
            )
        elif header.header_name.lower() in from_secret:
            problems.append(Problem(field, f"{header.header_name} is listed twice; keep only one"))
        from_secret.add(header.header_name.lower())
    return problems


def mcp_server_entry_rules(spec: MCPServerEntrySpec) -> list[Problem]:
    """The remote URL passes the same rules as an MCPRemoteProxy's, and so do the forwarded headers."""
    problems = remote_url_problems(
        spec.remote_url, "spec.remoteUrl", allow_private=spec.allow_private_endpoint
    )
    problems += ca_bundle_problems(spec.ca_bundle_ref, spec.remote_url, "spec.caBundleRef")
    return problems + header_forward_problems(spec.header_forward)


def mcp_oidc_config_rules(spec: MCPOIDCConfigSpec) -> list[Problem]:
    """The block of the chosen type is set (and only it) and valid."""
    problems = check_oidc_blocks(spec.type, spec.inline, spec.kubernetes_service_account, "spec")
    if problems:
        return problems
    if spec.kubernetes_service_account is not None:
        return check_service_account_oidc(spec.kubernetes_service_account, "spec.kubernetesServiceAccount")
    assert spec.inline is not None  # checked above
    return check_oidc_provider(spec.inline, "spec.inline")


def _override_name_clashes(overrides: dict[str, ToolOverride], field: str) -> list[Problem]:
    problems = []
    targets = Counter(o.name for o in overrides.values() if o.name)
    for tool, override in sorted(overrides.items()):
        if override.name and targets[override.name] > 1:
            problems.append(
                Problem(
                    f"{field}[{tool}].name",
                    f"several tools are renamed to {override.name!r}; pick distinct names",
                )
            )
        if override.name is None and override.description is None and override.annotations is None:
            problems.append(
                Problem(
                    f"{field}[{tool}]", "the override changes nothing; set name, description or annotations"
                )
            )
    return problems


def authz_config_rules(spec: MCPAuthzConfigSpec) -> list[Problem]:
    return authz_config_problems(spec.config, "spec.config")


def tool_config_rules(spec: MCPToolConfigSpec) -> list[Problem]:
    problems = []
    allowed = spec.tools_filter or []
    for name, count in Counter(allowed).items():
        if count > 1:
            problems.append(
                Problem("spec.toolsFilter", f"{name!r} is listed {count} times; list each tool once")
            )
    overrides = spec.tools_override or {}
    problems += _override_name_clashes(overrides, "spec.toolsOverride")
    for tool, override in sorted(overrides.items()):
        if allowed and tool not in allowed:
            problems.append(
                Problem(
                    f"spec.toolsOverride[{tool}]",
                    f"{tool!r} is not in toolsFilter, so the override never applies; add it to toolsFilter "
                    "or remove the override",
                )
            )
        if (
            override.name
            and override.name != tool
            and override.name in allowed
            and override.name not in overrides
        ):
            problems.append(
                Problem(
                    f"spec.toolsOverride[{tool}].name",
                    f"{override.name!r} is the name of another exposed tool; choose a name no tool uses",
                )
            )
    return problems


def _backend_auth_problems(auth: BackendAuthConfig, field: str) -> list[Problem]:
    if auth.type == "externalAuthConfigRef" and auth.external_auth_config_ref is None:
        return [
            Problem(
                f"{field}.externalAuthConfigRef",
                "type is externalAuthConfigRef; set externalAuthConfigRef.name",
            )
        ]
    if auth.type != "externalAuthConfigRef" and auth.external_auth_config_ref is not None:
        return [
            Problem(
                f"{field}.externalAuthConfigRef",
                f"is ignored with type {auth.type}; remove it or set type: externalAuthConfigRef",
            )
        ]
    return []


def _vmcp_auth_problems(spec: VirtualMCPServerSpec) -> list[Problem]:
    problems: list[Problem] = []
    incoming = spec.incoming_auth
    base = "spec.incomingAuth"
    if incoming.type == "oidc":
        if incoming.oidc_config is None and incoming.oidc_config_ref is None:
            problems.append(
                Problem(
                    f"{base}.oidcConfig",
                    "type is oidc; set oidcConfig.inline.issuer, or oidcConfigRef (a shared MCPOIDCConfig)",
                )
            )
        problems += inbound_auth_problems(incoming.oidc_config, incoming.oidc_config_ref, base)
    else:
        for name, value in (
            ("oidcConfig", incoming.oidc_config),
            ("oidcConfigRef", incoming.oidc_config_ref),
        ):
            if value is not None:
                problems.append(
                    Problem(f"{base}.{name}", "is ignored with type anonymous; set type: oidc or remove it")
                )
    shared = incoming.authz_config_ref is not None
    problems += authz_problems(incoming.authz_config, "spec.incomingAuth.authzConfig", shared=shared)
    if spec.outgoing_auth is not None:
        if spec.outgoing_auth.default is not None:
            problems += _backend_auth_problems(spec.outgoing_auth.default, "spec.outgoingAuth.default")
        for name, auth in sorted((spec.outgoing_auth.backends or {}).items()):
            problems += _backend_auth_problems(auth, f"spec.outgoingAuth.backends[{name}]")
    return problems


def _audit_problems(audit: GatewayAudit | None) -> list[Problem]:
    """What of ToolHive's audit settings the gateway's audit line cannot honour."""
    problems = []
    if audit is not None and audit.include_response_data:
        problems.append(
            Problem(
                "spec.config.audit.includeResponseData",
                "is not supported: the audit line holds no result; remove it",
            )
        )
    if audit is not None and audit.detect_application_errors is False:
        problems.append(
            Problem(
                "spec.config.audit.detectApplicationErrors",
                "cannot be turned off: a JSON-RPC error answer is always audited as outcome error; remove it",
            )
        )
    return problems


def _failure_handling_problems(failure: FailureHandling | None) -> list[Problem]:
    """Thresholds of at least 1 and durations above zero (the circuit's open time at least 1s, as
    ToolHive requires, so a flapping backend cannot thrash)."""
    if failure is None:
        return []
    base = "spec.config.operational.failureHandling"
    problems = []
    thresholds = {"unhealthyThreshold": failure.unhealthy_threshold}
    durations = {"healthCheckInterval": failure.health_check_interval}
    durations["healthCheckTimeout"] = failure.health_check_timeout
    if (breaker := failure.circuit_breaker) is not None:
        thresholds["circuitBreaker.failureThreshold"] = breaker.failure_threshold
        if duration_seconds(breaker.timeout) < 1:
            problems.append(
                Problem(f"{base}.circuitBreaker.timeout", f"{breaker.timeout!r} is under 1s; use e.g. 60s")
            )
    for name, value in thresholds.items():
        if value < 1:
            problems.append(Problem(f"{base}.{name}", f"{value} must be at least 1; use e.g. 3 (or omit it)"))
    for name, text in durations.items():
        if duration_seconds(text) <= 0:
            problems.append(Problem(f"{base}.{name}", f"{text!r} must be above zero; use e.g. 30s"))
    return problems


def _timeout_problems(spec: VirtualMCPServerSpec) -> list[Problem]:
    """Backend timeouts above zero (a zero timeout would fail every request at once)."""
    timeouts = spec.config.operational.timeouts
    base = "spec.config.operational.timeouts"
    named = {"default": timeouts.default}
    named |= {f"perWorkload[{k}]": v for k, v in sorted((timeouts.per_workload or {}).items())}
    return [
        Problem(f"{base}.{name}", f"{text!r} must be above zero; use e.g. 30s")
        for name, text in named.items()
        if duration_seconds(text) <= 0
    ]


def _optimizer_problems(spec: VirtualMCPServerSpec) -> list[Problem]:
    optimizer = spec.config.optimizer
    if optimizer is None:
        return []
    return optimizer_problems(
        optimizer, "spec.config.optimizer", with_server_ref=spec.embedding_server_ref is not None
    )


def _code_mode_problems(spec: VirtualMCPServerSpec) -> list[Problem]:
    """``codeMode``'s limits in range (ToolHive's minimum of 1; at most 100 branches at once here)."""
    code_mode = spec.config.code_mode
    if code_mode is None:
        return []
    base, problems = "spec.config.codeMode", []
    if code_mode.step_limit is not None and code_mode.step_limit < 1:
        problems.append(
            Problem(f"{base}.stepLimit", f"{code_mode.step_limit} must be at least 1; use e.g. 100000")
        )
    most = code_mode.parallel_max_concurrency
    if most is not None and not 1 <= most <= 100:
        problems.append(Problem(f"{base}.parallelMaxConcurrency", f"{most} is not 1 to 100; use e.g. 10"))
    timeout = code_mode.tool_call_timeout
    if timeout is not None and duration_seconds(timeout) <= 0:
        problems.append(Problem(f"{base}.toolCallTimeout", f"{timeout!r} must be above zero; use e.g. 30s"))
    return problems


def composite_tool_definition_rules(spec: CompositeToolConfig) -> list[Problem]:
    return composite_tool_problems(spec, "spec")


def _composite_problems(spec: VirtualMCPServerSpec) -> list[Problem]:
    base = "spec.config"
    problems = composite_tools_problems(spec.config.composite_tools or [], f"{base}.compositeTools")
    refs = [ref.name for ref in spec.config.composite_tool_refs or []]
    for name, count in sorted(Counter(refs).items()):
        if count > 1:
            problems.append(Problem(f"{base}.compositeToolRefs", f"{name!r} is listed {count} times"))
    return problems


def virtual_mcp_server_rules(spec: VirtualMCPServerSpec) -> list[Problem]:
    problems = _vmcp_auth_problems(spec)
    problems += _composite_problems(spec)
    problems += _failure_handling_problems(spec.config.operational.failure_handling)
    problems += _timeout_problems(spec) + _optimizer_problems(spec) + _code_mode_problems(spec)
    problems += passthrough_header_problems(spec.passthrough_headers, "spec.passthroughHeaders")
    problems += _audit_problems(spec.config.audit)
    problems += passthrough_header_problems(spec.config.passthrough_headers, "spec.config.passthroughHeaders")
    if spec.config.telemetry is not None:
        referenced = spec.telemetry_config_ref is not None
        problems += inline_telemetry_rules(
            spec.config.telemetry, "spec.config.telemetry", referenced=referenced
        )
    limits = spec.config.rate_limiting
    problems += scaling_problems(spec.session_storage, limits, limits_field="spec.config.rateLimiting")
    problems += disruption_budget_problems(spec.pod_disruption_budget)
    if spec.pod_template_spec is not None:
        problems += pod_template_problems(spec.pod_template_spec)
    agg = spec.config.aggregation
    base = "spec.config.aggregation"
    crc = agg.conflict_resolution_config
    if agg.conflict_resolution == "prefix" and "{workload}" not in crc.prefix_format:
        problems.append(
            Problem(
                f"{base}.conflictResolutionConfig.prefixFormat",
                f"{crc.prefix_format!r} lacks the {{workload}} placeholder, so backends would clash; "
                "write e.g. {workload}_",
            )
        )
    order = crc.priority_order or []
    if agg.conflict_resolution == "priority" and not order:
        problems.append(
            Problem(
                f"{base}.conflictResolutionConfig.priorityOrder",
                "conflictResolution is priority; list the backends here, highest priority first",
            )
        )
    for name, count in Counter(order).items():
        if count > 1:
            problems.append(
                Problem(
                    f"{base}.conflictResolutionConfig.priorityOrder",
                    f"{name!r} appears {count} times; list it once",
                )
            )
    seen: set[str] = set()
    for i, tools in enumerate(agg.tools or []):
        field = f"{base}.tools[{i}]"
        if tools.workload in seen:
            problems.append(
                Problem(f"{field}.workload", f"{tools.workload!r} already has an entry; merge the two")
            )
        seen.add(tools.workload)
        if tools.tool_config_ref is not None and (tools.filter is not None or tools.overrides is not None):
            problems.append(
                Problem(f"{field}.toolConfigRef", "set either toolConfigRef or filter/overrides, not both")
            )
        problems += _override_name_clashes(tools.overrides or {}, f"{field}.overrides")
    if agg.conflict_resolution == "manual":
        problems += _manual_clashes(spec)
    return problems


def _manual_clashes(spec: VirtualMCPServerSpec) -> list[Problem]:
    """With manual resolution, two backends must not rename tools to the same final name."""
    owners: dict[str, str] = {}
    problems = []
    for i, tools in enumerate(spec.config.aggregation.tools or []):
        for tool, override in sorted((tools.overrides or {}).items()):
            if not override.name:
                continue
            other = owners.get(override.name)
            if other is not None and other != tools.workload:
                problems.append(
                    Problem(
                        f"spec.config.aggregation.tools[{i}].overrides[{tool}].name",
                        f"{override.name!r} is also a new name in {other!r}; pick a distinct name",
                    )
                )
            owners.setdefault(override.name, tools.workload)
    return problems


_AUTH_BLOCKS = {
    "tokenExchange": "token_exchange",
    "headerInjection": "header_injection",
    "bearerToken": "bearer_token",
    "oauth2ClientCredentials": "oauth2_client_credentials",
    "embeddedAuthServer": "embedded_auth_server",
}


def external_auth_config_rules(spec: MCPExternalAuthConfigSpec) -> list[Problem]:
    if spec.type in UNSUPPORTED_AUTH_TYPES:
        supported = ", ".join(_AUTH_BLOCKS) + ", unauthenticated"
        meaning = UNSUPPORTED_AUTH_TYPES[spec.type]
        return [
            Problem(
                "spec.type",
                f"{spec.type} is not supported yet; use one of {supported} (ToolHive: {meaning})",
            )
        ]
    problems = []
    for block, attr in _AUTH_BLOCKS.items():
        present = getattr(spec, attr) is not None
        if block == spec.type and not present:
            problems.append(Problem(f"spec.{block}", f"type is {spec.type}; set the {block} block"))
        elif block != spec.type and present:
            problems.append(
                Problem(f"spec.{block}", f"is ignored with type {spec.type}; remove it or set type: {block}")
            )
    if spec.token_exchange is not None:
        te = spec.token_exchange
        if te.client_secret_ref is not None and not te.client_id:
            problems.append(
                Problem(
                    "spec.tokenExchange.clientId", "clientSecretRef is set without clientId; set clientId"
                )
            )
        if te.external_token_header_name is not None:
            bad = header_name_problem(
                te.external_token_header_name, "spec.tokenExchange.externalTokenHeaderName"
            )
            problems += [bad] if bad else []
    if spec.header_injection is not None:
        bad = header_name_problem(spec.header_injection.header_name, "spec.headerInjection.headerName")
        problems += [bad] if bad else []
    if spec.embedded_auth_server is not None:
        problems += embedded_auth_problems(spec.embedded_auth_server)
    return problems
