"""Desired state of a VirtualMCPServer: pure functions from the typed spec and its resolved group.

Children, all owned by the VirtualMCPServer:

- ConfigMap ``<name>-vmcp``: the gateway's config file ``vmcp.yaml`` (``api.vmcp_config``): one backend per
  group member that has a ``status.url`` and per valid MCPServerEntry (its ``spec.remoteUrl``, routed
  directly, with its ``allowPrivateEndpoint`` and ``headerForward``), its outbound auth, the aggregation
  policy, filters, overrides, timeouts and inbound OIDC. Secret values never appear in it: they are
  environment variables filled by the kubelet from ``secretKeyRef``;
- ServiceAccount ``<name>-vmcp`` (not created when ``spec.serviceAccount`` names one), and Role +
  RoleBinding ``<name>-vmcp`` granting that account ``get``/``patch`` on this one VirtualMCPServer's
  ``status`` and nothing else: the gateway writes its backends' health there (``VMCP_NAME`` /
  ``VMCP_NAMESPACE`` in its environment name the object);
- Deployment ``<name>``: ``mcp-operator vmcp``. Its pod template carries the hash of what the gateway reads
  only at start-up (image, port, inbound auth), NOT of the backend list: the gateway hot-reloads the
  mounted ConfigMap, so membership and URL changes never roll the pods;
- Service ``<name>``: the endpoint clients use.

Members come in as :class:`Member` values read from the cache by the reconciler; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.auth_config import HeaderForwardConfig, OutboundAuthConfig
from api.authz import cedar_config
from api.authz_config import CedarConfig
from api.common import ProxyDeploymentOverrides
from api.composite import CompositeToolConfig
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import AuditConfig
from api.virtualmcpserver import FailureHandling, GatewayAudit, Optimizer, VirtualMCPServer
from api.virtualmcpserver import WorkloadToolConfig as CRDWorkloadTools
from api.vmcp_config import (
    AggregationConfig,
    BackendConfig,
    CircuitBreakerConfig,
    CodeModeConfig,
    ConflictResolutionConfig,
    FailureHandlingConfig,
    IncomingAuthConfig,
    OperationalConfig,
    OptimizerConfig,
    TimeoutsConfig,
    ToolOverride,
    VMCPConfig,
    WorkloadTimeouts,
    WorkloadToolConfig,
)
from controller.reconcilers import children
from controller.reconcilers import workload_build as common
from controller.reconcilers.children import JSON
from controller.reconcilers.embeddingserver_build import EMBEDDING_PROVIDER as EMBEDDING_SERVER_PROVIDER
from controller.reconcilers.render import SecretEnv, inbound_oidc, oidc_ca_bundle_ref, tool_filter
from controller.reconcilers.scaling_render import password_env, rate_limit_config, session_storage_config
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.workload_build import CONFIG_DIR, FrontPod, Owner, WorkloadNames

CONFIG_KEY = "vmcp.yaml"
VMCP_PORT = 4483
CONTAINER = "vmcp"
COMPONENT = "gateway"

Transport = Literal["streamable-http", "sse"]


@dataclass(frozen=True)
class Names(WorkloadNames):
    """Names of a VirtualMCPServer's children: Deployment and Service ``<name>``, ConfigMap, account and
    RBAC ``<name>-vmcp``."""

    config_suffix: str = "-vmcp"

    @property
    def gateway(self) -> str:
        return self.proxy


@dataclass(frozen=True)
class Member:
    """One group member as the gateway needs it (read from the member's raw cached object)."""

    kind: str
    """``MCPServer``, ``MCPRemoteProxy`` or ``MCPServerEntry``."""
    name: str
    url: str | None
    """The member's ``status.url`` (an MCPServerEntry's ``spec.remoteUrl``); a member without one is not
    a backend yet."""
    transport: Transport
    external_auth: str | None
    """The member's own ``spec.externalAuthConfigRef.name`` (used by ``discovered`` outbound auth)."""
    allow_private_endpoint: bool | None = None
    """An MCPServerEntry's ``spec.allowPrivateEndpoint`` (None for the in-cluster members)."""


@dataclass(frozen=True)
class Backend:
    """A member that becomes a gateway backend, with its resolved outbound auth."""

    member: Member
    auth: OutboundAuthConfig | None = None
    header_forward: HeaderForwardConfig | None = None
    """An MCPServerEntry's ``spec.headerForward`` (secret values as env references)."""
    ca_bundle: str | None = None
    """An MCPServerEntry's ``spec.caBundleRef``: the PEM certificates read from its ConfigMap."""


def member_from_raw(kind: str, raw: JSON) -> Member:
    """Read a member from its raw dict (an unparseable spec still yields what the gateway needs)."""
    spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    assert isinstance(status, dict)
    url = status.get("url") if isinstance(status.get("url"), str) and status.get("url") else None
    sse = spec.get("transport") == "sse" or (
        spec.get("transport") == "stdio" and spec.get("proxyMode") == "sse"
    )
    if url is not None:  # the URL the member publishes is what the gateway dials: trust its path
        sse = url.rstrip("/").endswith("/sse")
    ref = spec.get("externalAuthConfigRef")
    auth = str(ref["name"]) if isinstance(ref, dict) and ref.get("name") else None
    if kind == "MCPServerEntry":  # no Service of its own: the gateway dials the remote URL itself
        remote = spec.get("remoteUrl")
        return Member(
            kind=kind,
            name=str((raw.get("metadata") or {}).get("name")),
            url=remote if isinstance(remote, str) and remote else None,
            transport="sse" if spec.get("transport") == "sse" else "streamable-http",
            external_auth=auth,
            allow_private_endpoint=spec.get("allowPrivateEndpoint") is True,
        )
    return Member(
        kind=kind,
        name=str((raw.get("metadata") or {}).get("name")),
        url=url,
        transport="sse" if sse else "streamable-http",
        external_auth=auth,
    )


def auth_config_name(vmcp: VirtualMCPServer, member: Member) -> str | None:
    """Which MCPExternalAuthConfig authenticates the gateway to ``member`` (None: no credential).

    A ``spec.outgoingAuth.backends[<member>]`` entry wins over ``default``; an entry of type
    ``discovered`` uses the member's own ``externalAuthConfigRef``. Without an entry, source
    ``discovered`` (the default) also uses the member's, and ``inline`` sends none.
    """
    outgoing = vmcp.spec.outgoing_auth
    if outgoing is None:
        return member.external_auth
    entry = (outgoing.backends or {}).get(member.name) or outgoing.default
    if entry is None:
        return member.external_auth if outgoing.source == "discovered" else None
    if entry.type == "discovered":
        return member.external_auth
    if entry.type == "externalAuthConfigRef" and entry.external_auth_config_ref is not None:
        return entry.external_auth_config_ref.name
    return None


def service_url(vmcp: VirtualMCPServer, settings: ReconcilerSettings) -> str:
    """``status.url``: the gateway Service's in-cluster URL."""
    return common.status_url(vmcp.metadata.name or "", vmcp.metadata.namespace, settings, VMCP_PORT, "/mcp")


def _workload_tools(
    entry: CRDWorkloadTools | None,
    workload: str,
    tool_configs: Mapping[str, MCPToolConfig | None],
    hide: bool,
) -> WorkloadToolConfig | None:
    """One backend's filter/overrides; a referenced MCPToolConfig that is missing hides every tool."""
    if entry is None:
        return WorkloadToolConfig(workload=workload, exclude_all=True) if hide else None
    if entry.tool_config_ref is not None:
        found = tool_configs.get(entry.tool_config_ref.name)
        if found is None:  # fail closed: never expose tools a filter was meant to hide
            return WorkloadToolConfig(workload=workload, exclude_all=True)
        rendered = tool_filter(found)
        return WorkloadToolConfig(
            workload=workload,
            filter=list(rendered.allow or ()),
            exclude_all=hide or entry.exclude_all,
            overrides={
                k: ToolOverride(name=o.name, description=o.description) for k, o in rendered.overrides.items()
            },
        )
    return WorkloadToolConfig(
        workload=workload,
        filter=list(entry.filter or ()),
        exclude_all=hide or entry.exclude_all,
        overrides={
            k: ToolOverride(name=o.name, description=o.description)
            for k, o in sorted((entry.overrides or {}).items())
        },
    )


def build_aggregation(
    vmcp: VirtualMCPServer, workloads: Sequence[str], tool_configs: Mapping[str, MCPToolConfig | None]
) -> AggregationConfig:
    """The aggregation policy; ``excludeAllTools`` and ``defaultToolVisibility: deny`` become per-backend
    ``excludeAll`` entries (the gateway's config has no global switch)."""
    agg = vmcp.spec.config.aggregation
    entries = {t.workload: t for t in agg.tools or []}
    deny_unlisted = agg.default_tool_visibility == "deny"
    tools: list[WorkloadToolConfig] = []
    for workload in sorted(set(workloads) | set(entries)):
        entry = entries.get(workload)
        hide = agg.exclude_all_tools or (deny_unlisted and entry is None)
        rendered = _workload_tools(entry, workload, tool_configs, hide)
        if rendered is not None:
            tools.append(rendered)
    crc = agg.conflict_resolution_config
    return AggregationConfig(
        conflict_resolution=agg.conflict_resolution,
        conflict_resolution_config=ConflictResolutionConfig(
            prefix_format=crc.prefix_format, priority_order=list(crc.priority_order or ())
        ),
        tools=tools,
    )


def build_failure_handling(failure: FailureHandling | None) -> FailureHandlingConfig:
    """The gateway's failure handling: the CRD's fields (durations parsed by the model), or the same
    ToolHive defaults when unset."""
    if failure is None:
        return FailureHandlingConfig()
    breaker = failure.circuit_breaker
    return FailureHandlingConfig(
        health_check_interval=failure.health_check_interval,
        health_check_timeout=failure.health_check_timeout,
        unhealthy_threshold=failure.unhealthy_threshold,
        partial_failure_mode=failure.partial_failure_mode,
        circuit_breaker=CircuitBreakerConfig(
            enabled=breaker.enabled,
            failure_threshold=breaker.failure_threshold,
            timeout=breaker.timeout,
        )
        if breaker is not None
        else CircuitBreakerConfig(),
    )


def build_operational(vmcp: VirtualMCPServer) -> OperationalConfig:
    operational = vmcp.spec.config.operational
    timeouts = operational.timeouts
    return OperationalConfig(
        timeouts=TimeoutsConfig(
            call=timeouts.default,  # a Go-style duration string, parsed by the model
            per_workload={
                name: WorkloadTimeouts(call=value)
                for name, value in sorted((timeouts.per_workload or {}).items())
            },
        ),
        failure_handling=build_failure_handling(operational.failure_handling),
    )


def build_incoming_auth(
    vmcp: VirtualMCPServer, settings: ReconcilerSettings, shared: CedarConfig | None = None
) -> IncomingAuthConfig:
    """Inbound OIDC and the policies: inline, or ``shared`` (those of the referenced MCPAuthzConfig)."""
    incoming = vmcp.spec.incoming_auth
    authz = shared or (cedar_config(incoming.authz_config) if incoming.authz_config else None)
    if incoming.type != "oidc":
        return IncomingAuthConfig(type="anonymous", authz=authz)
    url = service_url(vmcp, settings)
    oidc = inbound_oidc(
        incoming.oidc_config,
        default_audience=url,
        default_resource_url=url,
        namespace=vmcp.metadata.namespace or "",
    )
    return IncomingAuthConfig(type="oidc", oidc=oidc, authz=authz)


def build_vmcp_config(
    vmcp: VirtualMCPServer,
    backends: Sequence[Backend],
    settings: ReconcilerSettings,
    tool_configs: Mapping[str, MCPToolConfig | None] | None = None,
    composite_tools: Sequence[CompositeToolConfig] = (),
    *,
    authz: CedarConfig | None = None,
    embedding_server_url: str | None = None,
) -> VMCPConfig:
    """The gateway's config file: backends sorted by name, then the policy (``authz``: the policies of
    the referenced MCPAuthzConfig, when there is one), the composite tools and the optimizer
    (``embedding_server_url``: the Ready EmbeddingServer of ``spec.embeddingServerRef``)."""
    ordered = sorted(backends, key=lambda b: b.member.name)
    return VMCPConfig(
        name=vmcp.metadata.name or "",
        backends=[
            BackendConfig(
                name=b.member.name,
                url=b.member.url or "",
                transport=b.member.transport,
                auth=b.auth,
                header_forward=b.header_forward,
                allow_private_endpoint=b.member.allow_private_endpoint,
                ca_bundle=b.ca_bundle,
            )
            for b in ordered
        ],
        aggregation=build_aggregation(vmcp, [b.member.name for b in ordered], tool_configs or {}),
        operational=build_operational(vmcp),
        incoming_auth=build_incoming_auth(vmcp, settings, authz),
        composite_tools=list(composite_tools),
        session_storage=session_storage_config(vmcp.spec.session_storage, SecretEnv())
        if vmcp.spec.session_storage is not None
        else None,
        rate_limiting=rate_limit_config(vmcp.spec.config.rate_limiting),
        optimizer=build_optimizer(vmcp, embedding_server_url),
        code_mode=build_code_mode(vmcp),
        # As in ToolHive: a non-empty spec.passthroughHeaders replaces spec.config's.
        audit=build_audit(vmcp.spec.config.audit),
        passthrough_headers=vmcp.spec.passthrough_headers or vmcp.spec.config.passthrough_headers or None,
    )


def build_audit(audit: GatewayAudit | None) -> AuditConfig | None:
    """ToolHive's audit settings as the gateway's audit line; unset: the gateway's default (on)."""
    if audit is None:
        return None
    return AuditConfig(
        enabled=audit.enabled is not False,  # ToolHive's gateway audits whenever the block is present
        include_arguments=audit.include_request_data,
        max_data_size=audit.max_data_size if audit.include_request_data else None,
        component=audit.component,
    )


def build_optimizer(
    vmcp: VirtualMCPServer, embedding_server_url: str | None = None
) -> OptimizerConfig | None:
    """The optimizer's settings; the embedding service's only with a service (without one the gateway
    searches by keywords, and ToolHive's schema defaults of the provider and timeout mean nothing).
    ``embedding_server_url``: the Ready EmbeddingServer of ``spec.embeddingServerRef``, which turns the
    optimizer on (with its defaults when ``spec.config.optimizer`` is unset, as in ToolHive) and is its
    embedding service, with the TEI API."""
    optimizer = vmcp.spec.config.optimizer
    if optimizer is None and embedding_server_url is None:
        return None
    optimizer = optimizer or Optimizer()
    settings: dict[str, Any] = {}
    if optimizer.max_tools_to_return is not None:
        settings["max_tools_to_return"] = optimizer.max_tools_to_return
    if optimizer.hybrid_search_semantic_ratio is not None:
        settings["hybrid_search_semantic_ratio"] = float(optimizer.hybrid_search_semantic_ratio)
    if optimizer.semantic_distance_threshold is not None:
        settings["semantic_distance_threshold"] = float(optimizer.semantic_distance_threshold)
    if embedding_server_url is not None:
        settings |= {
            "embedding_service": embedding_server_url,
            "embedding_provider": EMBEDDING_SERVER_PROVIDER,
            "embedding_service_timeout": optimizer.embedding_service_timeout,
        }
    elif optimizer.embedding_service is not None:
        settings |= {
            "embedding_service": optimizer.embedding_service,
            "embedding_provider": optimizer.embedding_provider,
            "embedding_model": optimizer.embedding_model,
            "embedding_headers": optimizer.embedding_headers,
            "embedding_service_timeout": optimizer.embedding_service_timeout,
        }
    return OptimizerConfig(**settings)


def build_code_mode(vmcp: VirtualMCPServer) -> CodeModeConfig | None:
    """``codeMode`` when enabled, its unset limits left to the file's defaults (ToolHive's)."""
    code_mode = vmcp.spec.config.code_mode
    if code_mode is None or not code_mode.enabled:
        return None
    limits = {
        "stepLimit": code_mode.step_limit,
        "parallelMaxConcurrency": code_mode.parallel_max_concurrency,
        "toolCallTimeout": code_mode.tool_call_timeout,
    }
    return CodeModeConfig.model_validate(
        {"enabled": True} | {k: v for k, v in limits.items() if v is not None}
    )


def restart_hash(config: VMCPConfig, settings: ReconcilerSettings) -> str:
    """Hash of what the gateway reads only when it starts (never the backends, the policy or the
    authorization policies: the gateway reloads those)."""
    incoming = config.incoming_auth.model_dump_json(by_alias=True, exclude_none=True, exclude={"authz"})
    read_at_start = [incoming]
    if (
        config.session_storage is not None or config.rate_limiting is not None
    ):  # absent: the hash stays as it was
        scaling = config.model_dump_json(by_alias=True, include={"session_storage", "rate_limiting"})
        read_at_start.append(scaling)
    return children.config_hash(
        "\n".join([settings.proxy_image, settings.proxy_image_pull_policy, str(VMCP_PORT), *read_at_start])
    )


def build_children(
    vmcp: VirtualMCPServer,
    owner_ref: JSON,
    settings: ReconcilerSettings,
    config: VMCPConfig,
    env: Sequence[JSON] = (),
) -> list[JSON]:
    """Every child manifest of ``vmcp`` (apply bodies: only the fields we own)."""
    owner = Owner.of(vmcp, owner_ref, COMPONENT)
    names = Names(owner.name)
    objects = [common.config_map(owner, names.config, {CONFIG_KEY: config.to_yaml()})]
    if vmcp.spec.service_account is None:
        # The gateway's token (health writer, config watch; see the Role below).
        objects.append(
            common.service_account(owner, names.account, automount=True, overrides=_pull_secrets(vmcp))
        )
    objects += [
        common.role(owner, names.account, _gateway_rules(names)),
        common.role_binding(owner, names.account, vmcp.spec.service_account or names.account),
        build_deployment(
            vmcp,
            owner_ref,
            settings,
            restart_hash(config, settings),
            [*env, *password_env(vmcp.spec.session_storage)],
        ),
        common.service(
            owner,
            names.gateway,
            VMCP_PORT,
            service_type=vmcp.spec.service_type,
            session_affinity=vmcp.spec.session_affinity,
        ),
        *common.disruption_budget(owner, names.gateway, vmcp.spec.pod_disruption_budget, settings),
    ]
    return objects


def _gateway_rules(names: Names) -> list[JSON]:
    """Only what the gateway needs, by name: its health writer patches this one object's status, and it
    watches its own ConfigMap (a member change reaches it at once, not at the kubelet's next sync)."""
    return [
        {
            "apiGroups": ["mcp-operator.dev"],
            "resources": ["virtualmcpservers/status"],
            "resourceNames": [names.name],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [names.config],
            "verbs": ["get", "list", "watch"],
        },
    ]


def build_deployment(
    vmcp: VirtualMCPServer, owner_ref: JSON, settings: ReconcilerSettings, digest: str, env: Sequence[JSON]
) -> JSON:
    names = Names(vmcp.metadata.name or "")
    args = ["vmcp", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--host", "0.0.0.0", "--port", str(VMCP_PORT)]
    log_level = vmcp.spec.config.operational.log_level
    if log_level is not None:  # read at start: a change rolls the pods through their template
        args += ["--log-level", log_level]
    container = common.front_container(
        CONTAINER,
        settings,
        args,
        VMCP_PORT,
        env=[
            {"name": "VMCP_NAME", "value": names.name},
            {"name": "VMCP_NAMESPACE", "value": vmcp.metadata.namespace or ""},
            {"name": "VMCP_CONFIG_MAP", "value": names.config},
            *(dict(e) for e in env),
        ],
        resources=vmcp.spec.resources,
    )
    pod = FrontPod(
        container,
        account=vmcp.spec.service_account or names.account,
        automount_token=True,  # the health writer's and the config watch's token (see _gateway_rules)
        config_map=names.config,
        digest=digest,
        replicas=vmcp.spec.replicas,
        patch=vmcp.spec.pod_template_spec,
        oidc_ca_bundle=oidc_ca_bundle_ref(vmcp.spec.incoming_auth.oidc_config),
        overrides=_pull_secrets(vmcp),
    )
    return common.front_deployment(Owner.of(vmcp, owner_ref, COMPONENT), names.gateway, pod)


def _pull_secrets(vmcp: VirtualMCPServer) -> ProxyDeploymentOverrides | None:
    """``spec.imagePullSecrets`` in the form the proxy's pod and account take theirs (one way to set them)."""
    secrets = vmcp.spec.image_pull_secrets
    return ProxyDeploymentOverrides(image_pull_secrets=secrets) if secrets else None
