"""The VirtualMCPServer controller: resolve the group's members from the cache, render the gateway's
config into ConfigMap ``<name>-vmcp``, apply the children, write status.

Members are MCPServers and MCPRemoteProxies (their ``status.url``) and MCPServerEntries (their
``spec.remoteUrl``, dialled directly). An ``incomingAuth.oidcConfigRef`` that does not resolve blocks the
children: the gateway is never deployed without the authentication it asks for.

Membership and URL changes only rewrite the ConfigMap (the gateway hot-reloads it); the Deployment's pod
template changes only for what the gateway reads at start-up. Reads only the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.auth_config import OutboundAuthConfig
from api.authz import shared_cedar_config
from api.authz_config import CedarConfig
from api.composite import CompositeToolConfig
from api.mcpauthzconfig import MCPAuthzConfig
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcptoolconfig import MCPToolConfig
from api.notices import notices
from api.virtualmcpcompositetooldefinition import VirtualMCPCompositeToolDefinition
from api.virtualmcpserver import VirtualMCPServer
from controller.core import (
    CONFIGMAP,
    DEPLOYMENT,
    ROLE,
    ROLEBINDING,
    Cache,
    ObjectKey,
    Resource,
    Watch,
)
from controller.reconcilers import virtualmcpserver_build as build
from controller.reconcilers.ca_bundles import (
    oidc_ca_bundle_digest,
    oidc_ca_bundle_watch,
    with_ca_bundle_digest,
)
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import (
    EMBEDDINGSERVER,
    MCPAUTHZCONFIG,
    MCPEXTERNALAUTHCONFIG,
    MCPGROUP,
    MCPOIDCCONFIG,
    MCPREMOTEPROXY,
    MCPSERVER,
    MCPSERVERENTRY,
    MCPTELEMETRYCONFIG,
    MCPTOOLCONFIG,
    VIRTUALMCPCOMPOSITETOOLDEFINITION,
    VIRTUALMCPSERVER,
)
from controller.reconcilers.mcpgroup import MEMBER_KINDS, members, register_member_indexes
from controller.reconcilers.mcpserverentry import CA_BUNDLE_INDEX, EntryRoute, entry_backend, index_ca_bundle
from controller.reconcilers.oidc_refs import ResolvedOIDC, gateway_with_oidc, oidc_secret_watch, resolve_oidc
from controller.reconcilers.refs import (
    AUTHZ_CONFIG_MAP_INDEX,
    EMBEDDING_SERVER_INDEX,
    EXTERNAL_AUTH_INDEX,
    GROUP_INDEX,
    OIDC_CONFIG_INDEX,
    SECRET_INDEX,
    TELEMETRY_INDEX,
    Missing,
    authz_config_map_watch,
    config_map_policies,
    index_authz_config_map,
    index_embedding_server,
    index_external_auth,
    index_group,
    index_oidc_config,
    index_telemetry,
    index_telemetry_secrets,
    not_found,
    parse_ref,
    resolve_embedding_server,
    secret_to_config_referrers,
)
from controller.reconcilers.render import SecretEnv, outbound_auth
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import workload_state
from controller.reconcilers.telemetry_build import with_telemetry_env
from controller.reconcilers.telemetry_refs import TelemetryRef, inline_telemetry, resolve_telemetry
from controller.reconcilers.virtualmcpcompositetooldefinition import composite_tool_ref_names
from controller.reconcilers.virtualmcpserver_status import Observed, vmcp_status
from controller.reconcilers.workload import FRONT_CHILDREN, Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = (*FRONT_CHILDREN, ROLE, ROLEBINDING)
VMCP_EXTERNAL_AUTH_INDEX = "ref:vmcpExternalAuthConfig"
VMCP_TOOL_CONFIG_INDEX = "ref:vmcpToolConfig"
VMCP_COMPOSITE_TOOL_INDEX = "ref:vmcpCompositeTool"
VMCP_AUTHZ_INDEX = "ref:vmcpAuthzConfig"


def _names(obj: JSON, values: list[Any]) -> list[str]:
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    return sorted({f"{namespace}/{v['name']}" for v in values if isinstance(v, dict) and v.get("name")})


def index_vmcp_external_auth(obj: JSON) -> list[str]:
    """The MCPExternalAuthConfigs a VirtualMCPServer's ``spec.outgoingAuth`` names."""
    outgoing = (obj.get("spec") or {}).get("outgoingAuth") or {}
    entries = [outgoing.get("default"), *((outgoing.get("backends") or {}).values())]
    return _names(obj, [e.get("externalAuthConfigRef") for e in entries if isinstance(e, dict)])


def index_vmcp_tool_config(obj: JSON) -> list[str]:
    """The MCPToolConfigs a VirtualMCPServer's ``spec.config.aggregation.tools[]`` name."""
    tools = (((obj.get("spec") or {}).get("config") or {}).get("aggregation") or {}).get("tools") or []
    return _names(obj, [t.get("toolConfigRef") for t in tools if isinstance(t, dict)])


def index_vmcp_composite_tools(obj: JSON) -> list[str]:
    """The VirtualMCPCompositeToolDefinitions a VirtualMCPServer's ``spec.config.compositeToolRefs`` name."""
    return _names(obj, [{"name": n} for n in composite_tool_ref_names(obj.get("spec") or {})])


def index_vmcp_authz(obj: JSON) -> list[str]:
    """The MCPAuthzConfig a VirtualMCPServer's ``spec.incomingAuth.authzConfigRef`` names."""
    incoming = (obj.get("spec") or {}).get("incomingAuth") or {}
    return _names(obj, [incoming.get("authzConfigRef")] if isinstance(incoming, dict) else [])


def setup(cache: Cache) -> list[Watch]:
    """The indexes this kind's watches read, and the watches."""
    cache.add_index(VIRTUALMCPSERVER, GROUP_INDEX, index_group)
    cache.add_index(VIRTUALMCPSERVER, VMCP_COMPOSITE_TOOL_INDEX, index_vmcp_composite_tools)
    cache.add_index(VIRTUALMCPSERVER, VMCP_AUTHZ_INDEX, index_vmcp_authz)
    cache.add_index(VIRTUALMCPSERVER, AUTHZ_CONFIG_MAP_INDEX, index_authz_config_map)
    cache.add_index(VIRTUALMCPSERVER, VMCP_EXTERNAL_AUTH_INDEX, index_vmcp_external_auth)
    cache.add_index(VIRTUALMCPSERVER, VMCP_TOOL_CONFIG_INDEX, index_vmcp_tool_config)
    cache.add_index(VIRTUALMCPSERVER, OIDC_CONFIG_INDEX, index_oidc_config)
    cache.add_index(VIRTUALMCPSERVER, TELEMETRY_INDEX, index_telemetry)
    cache.add_index(VIRTUALMCPSERVER, EMBEDDING_SERVER_INDEX, index_embedding_server)
    cache.add_index(MCPTELEMETRYCONFIG, SECRET_INDEX, index_telemetry_secrets)
    register_member_indexes(cache)
    cache.add_index(MCPSERVERENTRY, CA_BUNDLE_INDEX, index_ca_bundle)
    for resource in MEMBER_KINDS:
        cache.add_index(resource, EXTERNAL_AUTH_INDEX, index_external_auth)
    return [*watches(cache), oidc_secret_watch(cache, VIRTUALMCPSERVER)]


def watches(cache: Cache) -> list[Watch]:
    """Enqueue the VirtualMCPServers affected by a group, a member, an auth config or a tool config."""

    def by(index: str) -> Callable[[str], list[ObjectKey]]:
        return lambda value: [ObjectKey.of(o) for o in cache.by_index(VIRTUALMCPSERVER, index, value)]

    def own_key(obj: JSON) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    def of_member(member: JSON) -> list[ObjectKey]:
        return [key for group in index_group(member) for key in by(GROUP_INDEX)(group)]

    def of_ca_bundle(config_map: JSON) -> list[ObjectKey]:  # the entries trusting it, then their gateways
        entries = cache.by_index(MCPSERVERENTRY, CA_BUNDLE_INDEX, own_key(config_map))
        return sorted({key for entry in entries for key in of_member(entry)}, key=str)

    def of_auth_config(config: JSON) -> list[ObjectKey]:
        keys = by(VMCP_EXTERNAL_AUTH_INDEX)(own_key(config))
        for resource in MEMBER_KINDS:  # `discovered` auth: the members using it, then their gateways
            for member in cache.by_index(resource, EXTERNAL_AUTH_INDEX, own_key(config)):
                keys += of_member(member)
        return sorted(set(keys), key=str)

    return [
        Watch(MCPGROUP, lambda group: by(GROUP_INDEX)(own_key(group))),
        Watch(MCPSERVER, of_member),
        Watch(MCPREMOTEPROXY, of_member),
        Watch(MCPSERVERENTRY, of_member),
        Watch(MCPOIDCCONFIG, lambda config: by(OIDC_CONFIG_INDEX)(own_key(config))),
        Watch(MCPEXTERNALAUTHCONFIG, of_auth_config),
        Watch(MCPTOOLCONFIG, lambda config: by(VMCP_TOOL_CONFIG_INDEX)(own_key(config))),
        Watch(
            VIRTUALMCPCOMPOSITETOOLDEFINITION,
            lambda definition: by(VMCP_COMPOSITE_TOOL_INDEX)(own_key(definition)),
        ),
        Watch(MCPAUTHZCONFIG, lambda config: by(VMCP_AUTHZ_INDEX)(own_key(config))),
        authz_config_map_watch(cache, VIRTUALMCPSERVER),
        oidc_ca_bundle_watch(cache, VIRTUALMCPSERVER),
        Watch(CONFIGMAP, of_ca_bundle),
        Watch(MCPTELEMETRYCONFIG, lambda config: by(TELEMETRY_INDEX)(own_key(config))),
        secret_to_config_referrers(cache, VIRTUALMCPSERVER, MCPTELEMETRYCONFIG, TELEMETRY_INDEX),
        Watch(EMBEDDINGSERVER, lambda server: by(EMBEDDING_SERVER_INDEX)(own_key(server))),
    ]


@dataclass
class Resolution:
    """The group's members turned into backends, and whatever could not be resolved."""

    members: list[build.Member] = field(default_factory=list)
    backends: list[build.Backend] = field(default_factory=list)
    tool_configs: dict[str, MCPToolConfig | None] = field(default_factory=dict)
    secrets: SecretEnv = field(default_factory=SecretEnv)
    missing: list[Missing] = field(default_factory=list)
    group: JSON | None = None
    authz_config: MCPAuthzConfig | None = None
    """The referenced MCPAuthzConfig, parsed and checked (None: none referenced, or not usable)."""
    config_map_policies: CedarConfig | None = None
    """The policies of ``authzConfig.type: configMap`` (None: another type, or not usable)."""
    """The MCPGroup (None: it does not exist, nothing is rendered)."""
    composite_tools: list[CompositeToolConfig] = field(default_factory=list)
    """The inline composite tools, then the referenced definitions' (in ``compositeToolRefs`` order)."""
    composites_blocked: bool = False
    """A referenced definition is missing or invalid: nothing is rendered (the gateway keeps its config)."""
    oidc: ResolvedOIDC | None = None
    """The MCPOIDCConfig of ``incomingAuth.oidcConfigRef`` and the inline settings it amounts to."""
    auth_blocked: list[Missing] = field(default_factory=list)
    """Why the inbound authentication cannot be rendered (nothing is rendered then)."""
    telemetry: TelemetryRef = field(default_factory=TelemetryRef)
    """The MCPTelemetryConfig and the gateway container's ``OTEL_*`` variables from it."""
    embedding_service: str | None = None
    """The URL of the Ready EmbeddingServer of ``spec.embeddingServerRef`` (None: none, or not Ready)."""
    oidc_ca_digest: str | None = None
    """The digest of the CA certificates of the OIDC provider's ``caBundleRef`` (the pods roll on it)."""


def resolve_backends(cache: Cache, vmcp: VirtualMCPServer, namespace: str) -> Resolution:
    """Members with a ``status.url`` become backends; a backend whose outbound auth cannot be resolved
    is left out (never contacted without the credential it needs) and reported."""
    out = Resolution()
    group = vmcp.spec.group_ref.name
    taken: dict[str, str] = {}
    for resource in MEMBER_KINDS:
        for raw in members(cache, resource, namespace, group):
            member = build.member_from_raw(resource.kind, raw)
            if member.name in taken:
                out.missing.append(
                    Missing(
                        "spec.groupRef",
                        "DuplicateBackendName",
                        f"{member.kind} '{member.name}' has the same name as {taken[member.name]} "
                        f"'{member.name}' in group '{group}'; rename one (backend names must be unique)",
                    )
                )
                continue
            taken[member.name] = member.kind
            out.members.append(member)
            if member.url is None:
                continue
            route: EntryRoute | None = EntryRoute(None, None)
            if resource is MCPSERVERENTRY:
                route = entry_backend(cache, namespace, raw, out.secrets, out.missing)
            resolved, auth = (
                _auth(cache, vmcp, namespace, member, out) if route is not None else (False, None)
            )
            if resolved and route is not None:
                out.backends.append(build.Backend(member, auth, route.header_forward, route.ca_bundle))
    for entry in vmcp.spec.config.aggregation.tools or []:
        if entry.tool_config_ref is not None:
            out.tool_configs[entry.tool_config_ref.name] = _tool_config(
                cache, namespace, entry.tool_config_ref.name, entry.workload, out.missing
            )
    return out


def _auth(
    cache: Cache, vmcp: VirtualMCPServer, namespace: str, member: build.Member, out: Resolution
) -> tuple[bool, OutboundAuthConfig | None]:
    name = build.auth_config_name(vmcp, member)
    if name is None:
        return True, None
    where = f"outbound auth of backend '{member.name}'"
    raw = cache.get(MCPEXTERNALAUTHCONFIG, namespace, name)
    if raw is None:
        out.missing.append(
            Missing(
                "spec.outgoingAuth",
                "ExternalAuthConfigNotFound",
                f"MCPExternalAuthConfig '{name}' ({where}) does not exist in namespace '{namespace}'; "
                "create it or change spec.outgoingAuth",
            )
        )
        return False, None
    config = parse_ref(MCPExternalAuthConfig, raw, "spec.outgoingAuth", out.missing)
    if config is None:
        return False, None
    if config.spec.type == "tokenExchange":
        out.missing.append(
            Missing(
                "spec.outgoingAuth",
                "ExternalAuthConfigUnsupported",
                f"MCPExternalAuthConfig '{name}' ({where}) is tokenExchange, which the gateway cannot "
                "do (its backend sessions are shared by all callers); use headerInjection, bearerToken "
                "or oauth2ClientCredentials",
            )
        )
        return False, None
    try:
        return True, outbound_auth(config.spec, out.secrets)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.missing.append(
            Missing(
                "spec.outgoingAuth",
                "ExternalAuthConfigInvalid",
                f"MCPExternalAuthConfig '{name}' ({where}) cannot be used: {detail}; fix it",
            )
        )
        return False, None


def _tool_config(
    cache: Cache, namespace: str, name: str, workload: str, missing: list[Missing]
) -> MCPToolConfig | None:
    raw = cache.get(MCPTOOLCONFIG, namespace, name)
    if raw is None:
        missing.append(
            Missing(
                "spec.config.aggregation.tools",
                "ToolConfigNotFound",
                f"MCPToolConfig '{name}' (tools of backend '{workload}') does not exist in namespace "
                f"'{namespace}'; the backend's tools are hidden until it is fixed",
            )
        )
    return parse_ref(MCPToolConfig, raw, "spec.config.aggregation.tools", missing)


def resolve(cache: Cache, vmcp: VirtualMCPServer, raw: JSON) -> Resolution:
    """The group's members as backends (nothing when the group does not exist)."""
    namespace = vmcp.metadata.namespace or ""
    group_name = vmcp.spec.group_ref.name
    group = cache.get(MCPGROUP, namespace, group_name)
    if group is None:
        message = (
            f"MCPGroup '{group_name}' does not exist in namespace '{namespace}'; create it or change "
            "spec.groupRef"
        )
        return Resolution(missing=[Missing("spec.groupRef.name", "GroupNotFound", message)])
    resolution = resolve_backends(cache, vmcp, namespace)
    resolution.group = group
    resolution.oidc = _incoming_oidc(cache, vmcp, namespace, resolution.auth_blocked)
    oidc = vmcp.spec.incoming_auth.oidc_config
    resolution.oidc_ca_digest = oidc_ca_bundle_digest(
        cache, namespace, oidc, resolution.oidc, resolution.auth_blocked, prefix="spec.incomingAuth"
    )
    resolution.missing += resolution.auth_blocked
    ref = vmcp.spec.incoming_auth.authz_config_ref
    if ref is not None:
        found = cache.get(MCPAUTHZCONFIG, namespace, ref.name)
        field_path = "spec.incomingAuth.authzConfigRef.name"
        if found is None:
            message = (
                f"MCPAuthzConfig '{ref.name}' does not exist in namespace '{namespace}'; create it or remove "
                "spec.incomingAuth.authzConfigRef (the gateway keeps the policies in force until then)"
            )
            resolution.missing.append(Missing(field_path, "AuthzConfigNotFound", message))
        resolution.authz_config = parse_ref(MCPAuthzConfig, found, field_path, resolution.missing)
    inline = vmcp.spec.incoming_auth.authz_config
    field_path = "spec.incomingAuth.authzConfig"
    resolution.config_map_policies = config_map_policies(
        cache, namespace, inline, field_path, resolution.missing
    )
    # An unusable telemetry config degrades the gateway (reported) but never keeps it from serving.
    telemetry_ref, name = vmcp.spec.telemetry_config_ref, vmcp.metadata.name or ""
    if vmcp.spec.config.telemetry is not None:
        resolution.telemetry = inline_telemetry(vmcp.spec.config.telemetry, name)
    else:
        resolution.telemetry = resolve_telemetry(cache, namespace, telemetry_ref, name, resolution.missing)
    resolve_composite_tools(cache, vmcp, namespace, resolution)
    if vmcp.spec.embedding_server_ref is not None:
        name = vmcp.spec.embedding_server_ref.name
        resolution.embedding_service = resolve_embedding_server(cache, namespace, name, resolution.missing)
    return resolution


def _incoming_oidc(
    cache: Cache, vmcp: VirtualMCPServer, namespace: str, blocked: list[Missing]
) -> ResolvedOIDC | None:
    """The MCPOIDCConfig of ``incomingAuth.oidcConfigRef``, or why it cannot be used (``blocked``)."""
    ref = vmcp.spec.incoming_auth.oidc_config_ref
    if ref is None:
        return None
    ref_field = "spec.incomingAuth.oidcConfigRef"
    config = cache.get(MCPOIDCCONFIG, namespace, ref.name)
    if config is None:
        blocked.append(not_found(ref_field, "MCPOIDCConfig", ref.name, namespace, "OIDCConfigNotFound"))
    return resolve_oidc(cache, namespace, ref, config, ref_field=ref_field, missing=blocked)


def resolve_composite_tools(cache: Cache, vmcp: VirtualMCPServer, namespace: str, out: Resolution) -> None:
    """Inline tools and referenced definitions; a missing or invalid definition, or two tools of one name,
    blocks the render (``ResolvedRefs=False`` naming it) so the gateway keeps serving its last config."""
    field_path = "spec.config.compositeToolRefs"
    tools = list(vmcp.spec.config.composite_tools or [])
    for ref in vmcp.spec.config.composite_tool_refs or []:
        raw = cache.get(VIRTUALMCPCOMPOSITETOOLDEFINITION, namespace, ref.name)
        if raw is None:
            out.missing.append(
                Missing(
                    field_path,
                    "CompositeToolDefinitionNotFound",
                    f"VirtualMCPCompositeToolDefinition '{ref.name}' does not exist in namespace "
                    f"'{namespace}'; create it or remove it from {field_path}",
                )
            )
            out.composites_blocked = True
            continue
        definition = parse_ref(VirtualMCPCompositeToolDefinition, raw, field_path, out.missing)
        if definition is None:
            out.composites_blocked = True
        else:
            tools.append(definition.spec)
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            out.missing.append(
                Missing(
                    field_path,
                    "DuplicateCompositeToolName",
                    f"composite tool {tool.name!r} is defined twice (inline and/or by definitions); "
                    "rename one",
                )
            )
            out.composites_blocked = True
        seen.add(tool.name)
    out.composite_tools = tools


def kind(settings: ReconcilerSettings) -> WorkloadKind[VirtualMCPServer, Resolution]:
    """The VirtualMCPServer kind with ``settings`` (images, cluster domain)."""

    def render(vmcp: VirtualMCPServer, owner_ref: JSON, resolution: Resolution) -> list[JSON] | None:
        shared, incoming = resolution.authz_config, vmcp.spec.incoming_auth
        from_map = incoming.authz_config is not None and incoming.authz_config.type == "configMap"
        if (
            resolution.group is None
            or resolution.auth_blocked
            or resolution.composites_blocked
            or (incoming.authz_config_ref and shared is None)
            or (from_map and resolution.config_map_policies is None)
            or (vmcp.spec.embedding_server_ref and resolution.embedding_service is None)
        ):
            return None  # never rendered without its authentication or policies: the gateway keeps its own
        authz = (
            shared_cedar_config(shared.spec.config) if shared is not None else resolution.config_map_policies
        )
        inline = gateway_with_oidc(vmcp, resolution.oidc)
        config = build.build_vmcp_config(
            inline,
            resolution.backends,
            settings,
            resolution.tool_configs,
            resolution.composite_tools,
            authz=authz,
            embedding_server_url=resolution.embedding_service,
        )
        children = build.build_children(inline, owner_ref, settings, config, resolution.secrets.env())
        children = with_ca_bundle_digest(children, resolution.oidc_ca_digest)
        return with_telemetry_env(children, build.CONTAINER, resolution.telemetry.env)

    def status(vmcp: VirtualMCPServer, resolution: Resolution, outcome: Outcome) -> tuple[JSON, Events]:
        group = vmcp.spec.group_ref.name
        if resolution.group is None:
            observed = Observed(group, group_found=False, group_ready=False, missing=resolution.missing)
        else:
            name, namespace = build.Names(vmcp.metadata.name or "").gateway, vmcp.metadata.namespace
            observed = Observed(
                group,
                group_found=True,
                group_ready=(resolution.group.get("status") or {}).get("phase") == "Ready",
                members=resolution.members,
                backends=frozenset(b.member.name for b in resolution.backends),
                missing=[*outcome.conflicts, *resolution.missing],
                gateway=workload_state(outcome.newest(DEPLOYMENT, namespace, name), "Deployment"),
                auth_blocked=resolution.auth_blocked,
                oidc_config_hash=resolution.oidc.hash if resolution.oidc is not None else None,
            )
        generation = vmcp.metadata.generation or 0
        gateway = build.Names(vmcp.metadata.name or "").gateway
        url = outcome.url_once_served(vmcp.metadata.namespace, gateway, build.service_url(vmcp, settings))
        status, events = vmcp_status(outcome.previous, generation, url, observed, notices(vmcp))
        if resolution.authz_config is not None:
            status["authzConfigHash"] = spec_hash(resolution.authz_config.spec)
        if resolution.telemetry.hash is not None:
            status["telemetryConfigHash"] = resolution.telemetry.hash
        return status, events

    # No Terminating phase (the phases are Pending, Ready, Degraded and Failed) and no rollout to announce
    # (a new backend list is hot-reloaded).
    return WorkloadKind(
        VIRTUALMCPSERVER,
        VirtualMCPServer,
        OWNED,
        setup,
        resolve,
        render,
        status,
        terminating_phase=None,
        announce_rollout=False,
    )
