"""The MCPExternalAuthConfig controller: validity, ``configHash``, Secret references and the in-use finalizer.

Status: ``Accepted`` (the spec is valid, including what the data plane would refuse, e.g. a plain-http
token URL; the ``Valid`` printer column reads it), ``ResolvedRefs`` (the Secrets it names exist),
``InUse`` (who refers to it) and ``configHash`` (hash of the spec; consumers copy it into their
``externalAuthConfigHash`` and re-render when it changes: they watch this kind through the
``ref:externalAuthConfig`` index).

Deletion protection while a workload refers to it: :mod:`controller.reconcilers.in_use`.

A MCPToolConfig controller of the same shape lives in :mod:`controller.reconcilers.mcptoolconfig`.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from api.conditions import ACCEPTED, RESOLVED_REFS
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.problems import Problem, format_problems
from api.validation import parse_and_validate
from controller.core import (
    SECRET,
    Cache,
    Controller,
    ObjectKey,
    ReconcileContext,
    Result,
    Watch,
)
from controller.core.manager import Manager
from controller.reconcilers.auth_server_render import auth_server_config
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.in_use import hold_while_used
from controller.reconcilers.kinds import (
    MCPEXTERNALAUTHCONFIG,
    MCPREMOTEPROXY,
    MCPSERVER,
    MCPSERVERENTRY,
    VIRTUALMCPSERVER,
)
from controller.reconcilers.refs import (
    EXTERNAL_AUTH_INDEX,
    SECRET_INDEX,
    index_auth_config_secrets,
    index_external_auth,
    missing_auth_secrets,
    secret_to_configs,
    strip_secret_values,
    vmcp_external_auth_names,
)
from controller.reconcilers.render import SecretEnv, outbound_auth
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder
from controller.reconcilers.writes import emit


def render_problems(auth: MCPExternalAuthConfig) -> list[Problem]:
    """What the data plane would refuse although the CRD schema and rules accept it (pure)."""
    try:
        if auth.spec.embedded_auth_server is not None:
            embedded = auth.spec.embedded_auth_server
            example = f"{embedded.issuer}/mcp"  # the workload's URL is only known where it is referred to
            auth_server_config(
                embedded,
                namespace="",
                resource_url=example,
                cluster_domain="cluster.local",
                secrets=SecretEnv(),
            )
        else:
            outbound_auth(auth.spec, SecretEnv())
    except ValidationError as exc:
        block = f"spec.{auth.spec.type}"
        return [Problem(block, str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]
    except ValueError as exc:
        return [Problem(f"spec.{auth.spec.type}", str(exc))]
    return []


def referrers(cache: Cache, namespace: str, name: str) -> list[str]:
    """``Kind/name`` of every watched object referring to the config ``namespace/name`` (sorted)."""
    value = f"{namespace}/{name}"
    found = [
        f"MCPServer/{o['metadata']['name']}" for o in cache.by_index(MCPSERVER, EXTERNAL_AUTH_INDEX, value)
    ]
    found += [
        f"MCPRemoteProxy/{o['metadata']['name']}"
        for o in cache.by_index(MCPREMOTEPROXY, EXTERNAL_AUTH_INDEX, value)
    ]
    found += [
        f"MCPServerEntry/{o['metadata']['name']}"
        for o in cache.by_index(MCPSERVERENTRY, EXTERNAL_AUTH_INDEX, value)
    ]
    found += [
        f"VirtualMCPServer/{o['metadata']['name']}"
        for o in cache.list(VIRTUALMCPSERVER, namespace)
        if name in vmcp_external_auth_names(o.get("spec") or {})
    ]
    return sorted(found)


class MCPExternalAuthConfigReconciler:
    """``reconcile(key, ctx)`` for MCPExternalAuthConfig objects."""

    def controller(self, manager: Manager) -> Controller:
        cache = manager.cache
        cache.add_index(MCPSERVER, EXTERNAL_AUTH_INDEX, index_external_auth)
        cache.add_index(MCPREMOTEPROXY, EXTERNAL_AUTH_INDEX, index_external_auth)
        cache.add_index(MCPSERVERENTRY, EXTERNAL_AUTH_INDEX, index_external_auth)
        cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
        cache.informer(VIRTUALMCPSERVER)
        cache.set_transform(SECRET, strip_secret_values)

        def to_config(names: Callable[[JSON], list[str]]) -> Callable[[JSON], list[ObjectKey]]:
            def keys(obj: JSON) -> list[ObjectKey]:
                namespace = str((obj.get("metadata") or {}).get("namespace") or "")
                return [ObjectKey(namespace, n) for n in names(obj.get("spec") or {})]

            return keys

        def workload_ref(spec: JSON) -> list[str]:
            ref = spec.get("externalAuthConfigRef")
            return [str(ref["name"])] if isinstance(ref, dict) and ref.get("name") else []

        return Controller(
            name="mcpexternalauthconfig",
            for_=MCPEXTERNALAUTHCONFIG,
            reconcile=self.reconcile,
            watches=[
                Watch(MCPSERVER, to_config(workload_ref)),
                Watch(MCPREMOTEPROXY, to_config(workload_ref)),
                Watch(MCPSERVERENTRY, to_config(workload_ref)),
                Watch(VIRTUALMCPSERVER, to_config(vmcp_external_auth_names)),
                secret_to_configs(cache, MCPEXTERNALAUTHCONFIG),
            ],
        )

    async def reconcile(self, key: ObjectKey, ctx: ReconcileContext) -> Result:
        raw = ctx.cache.get(MCPEXTERNALAUTHCONFIG, key.namespace, key.name)
        if raw is None:
            return Result.done()
        meta = raw.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        previous: JSON = raw.get("status") or {}
        users = referrers(ctx.cache, key.namespace, key.name)
        builder = StatusBuilder(list(previous.get("conditions") or []), generation)

        nobody = "no MCPServer, MCPRemoteProxy, MCPServerEntry or VirtualMCPServer uses it"
        if await hold_while_used(ctx, raw, builder, users, nobody):
            return Result.done()

        parsed, problems = parse_and_validate(raw)
        status: JSON = {"observedGeneration": generation}
        if isinstance(parsed, MCPExternalAuthConfig) and not problems:
            problems = render_problems(parsed)
        if problems or not isinstance(parsed, MCPExternalAuthConfig):
            builder.set(ACCEPTED, False, "InvalidSpec", format_problems(problems))
            builder.remove(RESOLVED_REFS)
        else:
            builder.set(ACCEPTED, True, "Accepted", f"the {parsed.spec.type} configuration is valid")
            status["configHash"] = spec_hash(parsed.spec)
            missing = missing_auth_secrets(ctx.cache, key.namespace, key.name, raw.get("spec") or {})
            if missing:
                builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
            else:
                builder.set(
                    RESOLVED_REFS, True, "ResolvedRefs", "every referenced Secret exists", event=False
                )
        status["conditions"] = builder.conditions
        await ctx.applier.apply_status(raw, status)
        await emit(ctx, raw, builder.events)
        return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPExternalAuthConfig controller (``settings`` unused: it renders nothing)."""
    return MCPExternalAuthConfigReconciler().controller(manager)
