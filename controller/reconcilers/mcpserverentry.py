"""The MCPServerEntry controller, and how a VirtualMCPServer turns an entry into a backend.

An entry has no children: the VirtualMCPServers of its group dial ``spec.remoteUrl`` themselves
(:func:`entry_backend`, called by the VirtualMCPServer reconciler). This controller only reports:

- ``Accepted``: the spec is valid, including the URL rules of an MCPRemoteProxy (scheme, no credentials,
  no loopback, link-local, metadata or API server address; private and in-cluster hosts only with
  ``allowPrivateEndpoint``);
- ``ResolvedRefs``: the group, the MCPExternalAuthConfig (one the gateway can use), the Secrets of
  ``headerForward`` and the ConfigMap key of ``caBundleRef`` (valid PEM certificates) exist;
- ``InUse``: which VirtualMCPServers route to it;
- ``phase``: ``Valid`` (usable), ``Pending`` (a reference is missing) or ``Failed`` (invalid spec).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth_config import HeaderForwardConfig
from api.conditions import ACCEPTED, RESOLVED_REFS
from api.mcpserverentry import MCPServerEntry
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import CONFIGMAP, Cache, Controller, ObjectKey, ReconcileContext, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.ca_bundles import read_ca_bundle
from controller.reconcilers.children import JSON
from controller.reconcilers.in_use import IN_USE
from controller.reconcilers.kinds import MCPSERVERENTRY, VIRTUALMCPSERVER
from controller.reconcilers.outbound import resolve_external_auth
from controller.reconcilers.proxy_workload import proxy_setup
from controller.reconcilers.refs import (
    GROUP_INDEX,
    Missing,
    index_group,
    index_watch,
    missing_secrets,
    parse_ref,
    resolve,
)
from controller.reconcilers.render import SecretEnv, header_forward
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import FAILED, PENDING, StatusBuilder
from controller.reconcilers.writes import Events, emit

VALID = "Valid"
CA_BUNDLE_INDEX = "caBundleConfigMap"
"""MCPServerEntry objects by the ConfigMap of their ``caBundleRef`` (``namespace/name``)."""


@dataclass(frozen=True)
class EntryRoute:
    """How a gateway reaches a routable entry: its forwarded headers and its CA certificates."""

    header_forward: HeaderForwardConfig | None
    ca_bundle: str | None


def entry_backend(
    cache: Cache, namespace: str, raw: JSON, secrets: SecretEnv, missing: list[Missing]
) -> EntryRoute | None:
    """How a gateway reaches the entry ``raw`` (its ``headerForward`` with the Secret keys registered in
    ``secrets``, its CA bundle), or None when it may not route to it: its spec is invalid, or a header
    Secret or its CA bundle is missing. What keeps it out is added to ``missing``, naming the entry."""
    entry = parse_ref(MCPServerEntry, raw, "spec.groupRef", missing)
    if entry is None:
        return None
    absent = missing_secrets(cache, namespace, raw.get("spec") or {})
    bundle = ca_bundle(cache, entry, absent)
    name = entry.metadata.name
    missing += [Missing(m.field, m.reason, f"MCPServerEntry '{name}': {m.message}") for m in absent]
    if absent:
        return None
    return EntryRoute(header_forward(entry.spec.header_forward, secrets), bundle)


def ca_bundle(cache: Cache, entry: MCPServerEntry, missing: list[Missing]) -> str | None:
    """The PEM certificates of the entry's ``caBundleRef`` (None without one); a missing ConfigMap or key,
    or a value without a valid certificate, is added to ``missing``: the gateway then never routes to
    the entry (it would not verify the server as asked)."""
    ref = entry.spec.ca_bundle_ref
    if ref is None:
        return None
    namespace = entry.metadata.namespace or ""
    return read_ca_bundle(cache, namespace, ref, "spec.caBundleRef.configMapRef.name", missing)


def index_ca_bundle(obj: JSON) -> list[str]:
    """``namespace/name`` of the ConfigMap an entry's ``caBundleRef`` names."""
    ref = ((obj.get("spec") or {}).get("caBundleRef") or {}).get("configMapRef")
    name = ref.get("name") if isinstance(ref, dict) else None
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    return [f"{namespace}/{name}"] if isinstance(name, str) and name else []


def routing_gateways(cache: Cache, namespace: str, group: str) -> list[str]:
    """``VirtualMCPServer/name`` of the gateways of ``group`` (they route to its valid entries)."""
    found = cache.by_index(VIRTUALMCPSERVER, GROUP_INDEX, f"{namespace}/{group}")
    return sorted(f"VirtualMCPServer/{(o.get('metadata') or {}).get('name')}" for o in found)


def entry_missing(cache: Cache, entry: MCPServerEntry, raw: JSON) -> list[Missing]:
    """The entry's references that do not resolve, or that the gateway could not use."""
    namespace = entry.metadata.namespace or ""
    resolved = resolve(cache, namespace, raw.get("spec") or {})
    missing = resolved.missing
    ca_bundle(cache, entry, missing)
    auth = resolve_external_auth(cache, namespace, resolved, inbound_auth=True, missing=missing)
    if auth is not None and auth.spec.type == "tokenExchange":
        missing.append(
            Missing(
                "spec.externalAuthConfigRef.name",
                "ExternalAuthConfigUnsupported",
                f"MCPExternalAuthConfig '{auth.metadata.name}' is tokenExchange, which a gateway cannot do "
                "(its backend sessions are shared by all callers); use headerInjection, bearerToken or "
                "oauth2ClientCredentials",
            )
        )
    return missing


def entry_status(
    entry: MCPServerEntry, previous: JSON, missing: list[Missing], gateways: list[str]
) -> tuple[JSON, Events]:
    """The status (and Events) of a valid entry (pure)."""
    generation = entry.metadata.generation or 0
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    builder.set(ACCEPTED, True, "Accepted", "the spec is valid")
    if missing:
        phase, message = PENDING, "; ".join(m.message for m in missing)
        builder.set(RESOLVED_REFS, False, missing[0].reason, message)
        builder.set(
            IN_USE, False, "NotRouted", "no gateway routes to it until its references resolve", event=False
        )
    else:
        phase = VALID
        message = f"gateways of MCPGroup '{entry.spec.group_ref.name}' route to {entry.spec.remote_url}"
        builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
        if gateways:
            builder.set(IN_USE, True, "Routed", "routed to by " + ", ".join(gateways), event=False)
        else:
            no_gateway = f"no VirtualMCPServer serves MCPGroup '{entry.spec.group_ref.name}'"
            builder.set(IN_USE, False, "NoGateway", no_gateway, event=False)
    status = {"observedGeneration": generation, "phase": phase, "message": message}
    return {**status, "conditions": builder.conditions}, builder.events


def invalid_entry_status(previous: JSON, generation: int, message: str) -> tuple[JSON, Events]:
    """The status (and Events) of an entry whose spec is refused (pure)."""
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    builder.set(ACCEPTED, False, "InvalidSpec", message)
    builder.remove(RESOLVED_REFS)
    builder.set(IN_USE, False, "NotRouted", "no gateway routes to an invalid entry", event=False)
    status = {"observedGeneration": generation, "phase": FAILED, "message": message}
    return {**status, "conditions": builder.conditions}, builder.events


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(MCPSERVERENTRY, key.namespace, key.name)
    if raw is None:
        return Result.done()
    previous: JSON = raw.get("status") or {}
    parsed, problems = parse_and_validate(raw)
    if problems or not isinstance(parsed, MCPServerEntry):
        generation = int((raw.get("metadata") or {}).get("generation") or 0)
        status, events = invalid_entry_status(previous, generation, format_problems(problems))
    else:
        missing = entry_missing(ctx.cache, parsed, raw)
        gateways = routing_gateways(ctx.cache, key.namespace, parsed.spec.group_ref.name)
        status, events = entry_status(parsed, previous, missing, gateways)
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, events)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPServerEntry controller (``settings`` unused: an entry has no children)."""
    cache = manager.cache
    cache.add_index(VIRTUALMCPSERVER, GROUP_INDEX, index_group)
    cache.add_index(MCPSERVERENTRY, CA_BUNDLE_INDEX, index_ca_bundle)

    def entries_of_gateway(vmcp: JSON) -> list[ObjectKey]:
        values = index_group(vmcp)
        return [
            ObjectKey.of(o) for value in values for o in cache.by_index(MCPSERVERENTRY, GROUP_INDEX, value)
        ]

    return Controller(
        name="mcpserverentry",
        for_=MCPSERVERENTRY,
        reconcile=reconcile,
        watches=[
            *proxy_setup(MCPSERVERENTRY, cache),
            Watch(VIRTUALMCPSERVER, entries_of_gateway),
            index_watch(cache, CONFIGMAP, MCPSERVERENTRY, CA_BUNDLE_INDEX),
        ],
    )
