"""What the two proxy kinds (MCPServer, MCPRemoteProxy) share beyond :mod:`workload`: their references
(group, Secrets, MCPToolConfig, MCPExternalAuthConfig, MCPOIDCConfig, MCPAuthzConfig) and the shape of
their status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from api.authz import shared_cedar_config
from api.authz_config import CedarConfig
from api.conditions import READY, RESOLVED_REFS
from api.mcpauthzconfig import MCPAuthzConfig
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.notices import notices
from controller.core import SECRET, Cache, Resource, Watch
from controller.reconcilers.ca_bundles import (
    oidc_ca_bundle_digest,
    oidc_ca_bundle_watch,
    with_ca_bundle_digest,
)
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPEXTERNALAUTHCONFIG, MCPTELEMETRYCONFIG
from controller.reconcilers.oidc_refs import ResolvedOIDC, oidc_secret_watch, resolve_oidc
from controller.reconcilers.outbound import invalid_auth, resolve_auth_server, resolve_external_auth
from controller.reconcilers.refs import (
    GROUP_NOT_FOUND,
    SECRET_INDEX,
    TELEMETRY_INDEX,
    Missing,
    config_map_policies,
    index_auth_config_secrets,
    index_telemetry_secrets,
    parse_ref,
    referrer_watches,
    register_workload_indexes,
    resolve,
    secret_to_auth_referrers,
    secret_to_config_referrers,
    strip_secret_values,
)
from controller.reconcilers.status import FAILED, PENDING, StatusBuilder, WorkloadState, accept
from controller.reconcilers.telemetry_build import with_telemetry_env
from controller.reconcilers.telemetry_refs import TelemetryRef, resolve_telemetry
from controller.reconcilers.workload import Outcome
from controller.reconcilers.writes import Events

ProxyWorkload = MCPServer | MCPRemoteProxy


def proxy_setup(resource: Resource, cache: Cache) -> list[Watch]:
    """Index a proxy kind by everything it refers to; watch those (and the Secrets its auth config names)."""
    register_workload_indexes(cache, resource)
    cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
    cache.add_index(MCPTELEMETRYCONFIG, SECRET_INDEX, index_telemetry_secrets)
    cache.set_transform(SECRET, strip_secret_values)
    return [
        *referrer_watches(cache, resource),
        secret_to_auth_referrers(cache, resource),
        oidc_secret_watch(cache, resource),
        secret_to_config_referrers(cache, resource, MCPTELEMETRYCONFIG, TELEMETRY_INDEX),
        oidc_ca_bundle_watch(cache, resource),
    ]


@dataclass
class ProxyRefs:
    """A proxy workload's references, found, parsed and checked (``missing``: what is not usable)."""

    tool_config: MCPToolConfig | None = None
    external_auth: MCPExternalAuthConfig | None = None
    oidc: ResolvedOIDC | None = None
    """The referenced MCPOIDCConfig and the inline settings it amounts to (``spec.oidcConfigRef``)."""
    missing: list[Missing] = field(default_factory=list)
    authz_config: MCPAuthzConfig | None = None
    config_map_policies: CedarConfig | None = None
    """The policies of ``authzConfig.type: configMap``, read from the ConfigMap and compiled."""

    @property
    def authz(self) -> CedarConfig | None:
        """The policies of the referenced MCPAuthzConfig (its rules passed: they compile) or ConfigMap."""
        if self.authz_config is not None:
            return shared_cedar_config(self.authz_config.spec.config)
        return self.config_map_policies

    telemetry: TelemetryRef = field(default_factory=TelemetryRef)
    """The MCPTelemetryConfig and the proxy container's ``OTEL_*`` variables from it."""
    auth_server: MCPExternalAuthConfig | None = None
    """The ``embeddedAuthServer`` config of ``spec.authServerRef``: the proxy's authorization server."""
    oidc_ca_digest: str | None = None
    """The digest of the CA certificates of the OIDC provider's ``caBundleRef`` (the pods roll on it)."""


def resolve_proxy_refs(cache: Cache, workload: ProxyWorkload, raw: JSON) -> ProxyRefs:
    """Every reference of a proxy workload, each problem reported in ``missing`` the same way for every
    kind. ``raw``: the cached object (references are read from its spec as stored)."""
    namespace = workload.metadata.namespace or ""
    resolved = resolve(cache, namespace, raw.get("spec") or {})
    missing = resolved.missing
    tool_config = parse_ref(MCPToolConfig, resolved.tool_config, "spec.toolConfigRef.name", missing)
    spec = workload.spec
    ref, raw_config = spec.oidc_config_ref, resolved.oidc_config
    oidc = resolve_oidc(cache, namespace, ref, raw_config, ref_field="spec.oidcConfigRef", missing=missing)
    ca_digest = oidc_ca_bundle_digest(cache, namespace, spec.oidc_config, oidc, missing)
    inbound = spec.oidc_config is not None or spec.oidc_config_ref is not None
    external_auth = resolve_external_auth(
        cache, namespace, resolved, inbound_auth=inbound or spec.auth_server_ref is not None, missing=missing
    )
    auth_server = resolve_auth_server(cache, namespace, resolved, inbound_auth=inbound, missing=missing)
    authz = parse_ref(MCPAuthzConfig, resolved.authz_config, "spec.authzConfigRef.name", missing)
    from_map = config_map_policies(cache, namespace, spec.authz_config, "spec.authzConfig", missing)
    name = workload.metadata.name or ""
    telemetry = resolve_telemetry(cache, namespace, spec.telemetry_config_ref, name, missing)
    return ProxyRefs(
        tool_config,
        external_auth,
        oidc,
        missing,
        authz_config=authz,
        config_map_policies=from_map,
        telemetry=telemetry,
        auth_server=auth_server,
        oidc_ca_digest=ca_digest,
    )


def render_unless_blocked(refs: ProxyRefs, render: Callable[[], list[JSON]]) -> list[JSON] | None:
    """``render()`` once every reference but the group resolved; a runtime refusal of the auth config
    becomes a ``Missing`` entry (the running children are kept)."""
    if _blocking(refs.missing):
        return None
    try:
        objects = with_ca_bundle_digest(render(), refs.oidc_ca_digest)
        return with_telemetry_env(objects, "proxy", refs.telemetry.env)
    except ValueError as exc:  # the auth config passed its own checks but the runtime refuses it
        refs.missing.append(invalid_auth(refs.external_auth, str(exc)))
        return None


@dataclass(frozen=True)
class ProxyState:
    """What decides a proxy workload's phase, as each kind names it."""

    url: str | None
    """``status.url``: None until the Service clients connect to exists."""
    pods: WorkloadState
    """The least ready of the workload's pods (proxy, and the server's for an MCPServer)."""
    serving_phase: str
    serving_message: str
    stopped_phase: str


def proxy_status(
    workload: ProxyWorkload,
    refs: ProxyRefs,
    outcome: Outcome,
    state: ProxyState,
    extra: Callable[[StatusBuilder], None] = lambda builder: None,
) -> tuple[JSON, Events]:
    """Accepted, ResolvedRefs and Ready; ``extra`` adds the kind's own conditions."""
    generation = workload.metadata.generation or 0
    previous = outcome.previous
    missing = [*refs.missing, *outcome.conflicts]
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    accept(builder, notices(workload), "the spec is valid")
    if missing:
        builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
    else:
        builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
    extra(builder)
    was_ready = any(
        c.get("type") == READY and c.get("status") == "True" for c in previous.get("conditions") or []
    )
    if workload.spec.replicas == 0:
        phase, message = state.stopped_phase, "scaled to zero replicas (spec.replicas is 0)"
        builder.set(READY, False, "Stopped", message)
    elif blocking := _blocking(missing):
        phase, message = PENDING, "waiting for referenced objects: " + "; ".join(m.message for m in blocking)
        builder.set(READY, False, "RefsNotResolved", message)
    elif state.pods.ready:  # a missing group is reported by ResolvedRefs (and its Event), not here
        phase, message = state.serving_phase, state.serving_message
        builder.set(READY, True, "Available", message)
    elif state.pods.failure is not None:
        phase, message = FAILED, state.pods.detail
        builder.set(READY, False, state.pods.failure, message)
    else:
        phase, message = PENDING, state.pods.detail
        builder.set(READY, False, "Unavailable", message, event=was_ready)
    status: JSON = {
        "phase": phase,
        "message": message,
        **({"url": state.url} if state.url else {}),
        "readyReplicas": state.pods.ready_replicas,
        "observedGeneration": generation,
        "conditions": builder.conditions,
    }
    if refs.tool_config is not None:
        status["toolConfigHash"] = spec_hash(refs.tool_config.spec)
    if refs.external_auth is not None:
        status["externalAuthConfigHash"] = spec_hash(refs.external_auth.spec)
    if refs.auth_server is not None:
        status["authServerConfigHash"] = spec_hash(refs.auth_server.spec)
    if refs.oidc is not None:
        status["oidcConfigHash"] = refs.oidc.hash
    if refs.authz_config is not None:
        status["authzConfigHash"] = spec_hash(refs.authz_config.spec)
    if refs.telemetry.hash is not None:
        status["telemetryConfigHash"] = refs.telemetry.hash
    return status, builder.events


def _blocking(missing: list[Missing]) -> list[Missing]:
    """The unresolved references that keep a proxy workload from being deployed and Ready (all but the
    group: a server serves on its own, and is only not part of a gateway until its group exists)."""
    return [m for m in missing if m.reason != GROUP_NOT_FOUND]
