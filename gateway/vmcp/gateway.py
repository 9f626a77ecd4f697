"""The virtual gateway's core: backends by name, the merged view, fan-out, routing and hot reload.

Fan-out, view recomputation and reload behave as docs/vmcp.md ("Runtime behaviour") says; calls are
routed by the view's routing table to the owning backend under the original name, tool calls through
the one :class:`gateway.request_policy.RequestPolicy`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import anyio
import anyio.abc
import mcp_types as types
import structlog
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from api.authz_config import CedarConfig
from api.composite import CompositeToolConfig
from api.proxy_config import AuditConfig
from api.vmcp_config import BackendConfig, VMCPConfig
from gateway import passthrough, tracing
from gateway.authz.enforce import Authorization
from gateway.authz.entities import Item, Principal
from gateway.backends.connection import BACKEND_UNAVAILABLE
from gateway.request_policy import RequestPolicy

from .aggregation import AggregatedView, Route, aggregate
from .backend import (
    BackendConnection,
    BackendUnavailableError,
    CircuitOpenError,
    ListKind,
    TransportFor,
    open_backend_transport,
)
from .composite import Elicit, call_composite, with_composites
from .health import backend_status_entries, overall_phase
from .notify import ChangedKind, FrontNotifier
from .resource_updates import ResourceRelay

__all__ = ["VirtualGateway"]

log = structlog.get_logger("gateway.vmcp")

_R = TypeVar("_R")


class VirtualGateway:
    """Backends + merged view + routing (see the module docstring)."""

    def __init__(
        self,
        config: VMCPConfig,
        *,
        transport: TransportFor = open_backend_transport,
        clock: Callable[[], float] = time.monotonic,
        policy: RequestPolicy | None = None,
    ) -> None:
        self.config = config
        self.passthrough = passthrough.allowlist(config.passthrough_headers)
        """The client headers forwarded to every backend (``passthroughHeaders``, hot-reloaded)."""
        self.transport = transport
        self.clock = clock
        self.policy = policy or RequestPolicy()
        """Metrics and audit of front requests (its tool filter is unused: routing is the view's)."""
        self.backends: dict[str, BackendConnection] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._view: AggregatedView = AggregatedView()
        self._view_key: object = None
        self._known: AggregatedView = AggregatedView()
        self._known_key: object = None
        self._composites: dict[str, CompositeToolConfig] = {}
        """The composite tools of the current view that can run, by name."""
        self.reloads = 0
        self.notifier = FrontNotifier()
        """Tells front clients when the merged lists change (:meth:`_announce_changes`)."""
        self.resources = ResourceRelay(self.notifier, self._resource_owner, self._spawn)
        """Front resource subscriptions, passed to the owning backends."""
        self._changed = anyio.Event()
        self._announced: dict[ChangedKind, tuple[Any, ...]] = {}
        self._authz: Authorization | None = None
        """The authorization object once created (kept while authorization is off: its metrics)."""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every backend's supervisor until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for backend in self.config.backends:
                await self._start(backend)
            tg.start_soon(self._announce_changes)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    async def _start(self, config: BackendConfig) -> None:
        assert self._tg is not None, "VirtualGateway.run() is not running"
        connection = BackendConnection(
            config,
            self.config.operational,
            transport=self.transport,
            on_lists_changed=self._lists_changed,
            on_resource_updated=lambda uri: self._spawn(self.resources.updated, uri),
            clock=self.clock,
        )
        self.backends[config.name] = connection
        await self._tg.start(connection.run)

    async def _retire(self, connection: BackendConnection) -> None:
        await connection.stop(drain_timeout=self.config.operational.timeouts.call_for(connection.name))

    async def apply_config(self, config: VMCPConfig) -> None:
        """Hot reload: add, drain-and-remove, or replace backends; keep unchanged sessions. The same config
        again (the file and the API both deliver each change) is a no-op."""
        assert self._tg is not None, "VirtualGateway.run() is not running"
        if config == self.config:
            return
        old = {b.name: b for b in self.config.backends}
        new = {b.name: b for b in config.backends}
        self.config = config
        self.passthrough = passthrough.allowlist(config.passthrough_headers)
        self.policy.auditor.config = config.audit or AuditConfig()
        for name, connection in list(self.backends.items()):
            if name not in new or new[name] != old.get(name):
                del self.backends[name]
                self._tg.start_soon(self._retire, connection)
                log.info("backend removed" if name not in new else "backend replaced", backend=name)
            else:
                connection.operational = config.operational
                connection.health.breaker.config = config.operational.failure_handling.circuit_breaker
                connection.health.unhealthy_threshold = (
                    config.operational.failure_handling.unhealthy_threshold
                )
        for name, backend in new.items():
            if name not in self.backends:
                await self._start(backend)
                log.info("backend added", backend=name)
        self._apply_authz(config.incoming_auth.authz)
        self._view_key = None
        self.reloads += 1
        self._changed.set()

    # ---- change notifications --------------------------------------------------------------------

    def _lists_changed(self, _backend: str) -> None:
        self._changed.set()

    def _spawn(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        if self._tg is not None:
            self._tg.start_soon(func, *args)

    async def _resource_owner(self, uri: str) -> BackendConnection | None:
        route = self.view().route_resource(uri)
        if route is None:
            route = (await self.refresh(("resources", "resource_templates"))).route_resource(uri)
        return self.backends.get(route.backend) if route is not None else None

    async def _announce_changes(self) -> None:
        """After each change signal: refetch what was invalidated (once, in parallel), re-merge, and
        notify front clients of each kind whose merged list now differs from the last one announced."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            view = await self.refresh(("tools", "prompts", "resources", "resource_templates"))
            current: dict[ChangedKind, tuple[Any, ...]] = {
                "tools": (*view.tools, self.config.optimizer, self.config.code_mode)
                if self.config.optimizer or self.config.code_mode
                else tuple(view.tools),
                "prompts": tuple(view.prompts),
                "resources": (*view.resources, *view.resource_templates),
            }
            changed = [k for k, items in current.items() if self._announced.get(k, ()) != items]
            self._announced = current
            await self.notifier.publish(changed)

    def _apply_authz(self, config: CedarConfig | None) -> None:
        """Put the reloaded policies in force (none: authorization off); a set that does not compile
        keeps the running one, or denies everything when authorization was off (never fail open)."""
        if config is None:
            self._authz = self._authz or self.policy.authz  # its metrics stay registered: reuse it later
            self.policy.authz = None
            return
        authz = self._authz or self.policy.authz
        if authz is None:
            authz = Authorization.fail_closed(
                config, self.config.name, auditor=self.policy.auditor, registry=self.policy.metrics.registry
            )
        elif not authz.reload(config) and self.policy.authz is None and authz.engine.config != config:
            authz.deny_all()  # refused (not merely unchanged: the same policies back are put in force)
        self._authz = self.policy.authz = authz

    # ---- lists -----------------------------------------------------------------------------------

    async def refresh(self, kinds: tuple[ListKind, ...]) -> AggregatedView:
        """Fan out to backends with stale lists (in parallel, each with its own timeout); merge."""
        stale = [b for b in self.backends.values() if not all(b.is_fresh(k) for k in kinds)]
        if len(stale) == 1:
            await stale[0].ensure_fresh(kinds)
        elif stale:
            async with anyio.create_task_group() as tg:
                for backend in stale:
                    tg.start_soon(backend.ensure_fresh, kinds)
        return self.view()

    def view(self) -> AggregatedView:
        """The merged view of the listed backends' cached lists (recomputed only when a list, a backend's
        ``listed`` flag or the config changed)."""
        key = (id(self.config), tuple((name, b.generation, id(b)) for name, b in self.backends.items()))
        if key != self._view_key:
            listed = {n: b.cached() for n, b in self.backends.items() if b.listed}
            merged = aggregate(listed, self.config.aggregation)
            self._view, self._composites = with_composites(merged, self.config.composite_tools)
            self._view_key = key
        return self._view

    def _unavailable_owner(self, name: str) -> BackendConnection | None:
        """The unlisted backend that would own tool ``name`` if it were healthy (a miss path only)."""
        if all(b.listed for b in self.backends.values()):
            return None
        key = self._view_key
        if key != self._known_key:
            known = {n: b.cached() for n, b in self.backends.items()}
            self._known, self._known_key = aggregate(known, self.config.aggregation), key
        route = self._known.tool_routes.get(name)
        owner = self.backends.get(route.backend) if route is not None else None
        return owner if owner is not None and not owner.listed else None

    def unavailable_backends(self) -> list[str]:
        """Backends that are unhealthy or whose circuit is open, by name."""
        return sorted(n for n, b in self.backends.items() if not b.listed)

    async def listing(self, kind: ListKind) -> AggregatedView:
        """The view a front list of ``kind`` is answered from: refreshed, and refused under
        ``partialFailureMode: fail`` while a backend is unavailable (:meth:`check_partial_failure`)."""
        view = await self.refresh((kind,))
        self.check_partial_failure()
        return view

    def check_partial_failure(self) -> None:
        """``partialFailureMode: fail``: a list request fails while any backend is unavailable (with
        ``best_effort`` it lists the others)."""
        if self.config.operational.failure_handling.partial_failure_mode != "fail":
            return
        if down := self.unavailable_backends():
            raise MCPError(
                BACKEND_UNAVAILABLE,
                f"backend(s) {', '.join(map(repr, down))} unavailable and partialFailureMode is fail: "
                + "; ".join(self.backends[n].refusal() for n in down),
            )

    def tool_input_schema(self, name: str) -> Mapping[str, Any] | None:
        """The exposed tool's input schema from the current view, without a fan-out (the modern front
        validates ``Mcp-Param-*`` headers against it on every call)."""
        tool = next((t for t in self.view().tools if t.name == name), None)
        return tool.input_schema if tool is not None else None

    # ---- calls -----------------------------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        caller: str = "anonymous",
        progress: ProgressFnT | None = None,
        elicit: Elicit | None = None,
        principal: Principal | None = None,
        came: tracing.Incoming | None = None,
    ) -> types.CallToolResult:
        """Route ``tools/call`` by the view (refreshed when the name is not in it), through the policy
        (decided for ``principal`` when authorization is on); a backend that cannot take it answers a
        tool error."""
        view = self.view()
        if (composite := self._composites.get(name)) is not None:
            return await self.policy.tool_call(
                name,
                name,
                arguments,
                caller,
                forward=lambda _: call_composite(
                    self, composite, arguments, caller, elicit=elicit, principal=principal
                ),
                authorize=self._tool_check(principal, name, arguments, None, view),
            )
        raw = await self.call_tool_raw(
            name, arguments, caller=caller, progress=progress, principal=principal, came=came
        )
        return types.CallToolResult.model_validate(raw)

    async def call_tool_raw(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        caller: str = "anonymous",
        progress: ProgressFnT | None = None,
        principal: Principal | None = None,
        came: tracing.Incoming | None = None,
    ) -> dict[str, Any]:
        """:meth:`call_tool` of a backend tool, its raw result (the front's fast path shapes it)."""
        route = self.view().tool_routes.get(name)
        if route is None:
            route = (await self.refresh(("tools",))).tool_routes.get(name)
        authorize = self._tool_check(principal, name, arguments, route, self.view())
        if route is None and (owner := self._unavailable_owner(name)) is not None:
            known_route = self._known.tool_routes.get(name)
            known = self._tool_check(principal, name, arguments, known_route, self._known)
            if known is not None:
                known()  # a hidden tool of an unavailable backend is denied, not reported unavailable
            raise MCPError(BACKEND_UNAVAILABLE, owner.refusal())
        backend_name = route.backend if route is not None else ""

        async def forward(original: str) -> dict[str, Any]:
            params = {"name": original, "arguments": dict(arguments or {})}
            try:
                return await self._call(backend_name, "tools/call", params, progress)
            except CircuitOpenError as exc:
                raise MCPError(BACKEND_UNAVAILABLE, str(exc)) from exc
            except BackendUnavailableError as exc:
                return _tool_error(str(exc))

        original = route.name if route is not None else None
        return await self.policy.tool_call(
            name,
            original,
            arguments,
            caller,
            forward=forward,
            authorize=authorize,
            came=came,
            backend=backend_name,
        )

    def _tool_check(
        self,
        principal: Principal | None,
        name: str,
        arguments: Mapping[str, Any] | None,
        route: Route | None,
        view: AggregatedView,
    ) -> Callable[[], None] | None:
        """The authorization check of a call of tool ``name`` routed by ``route`` in ``view`` (None:
        authorization is off)."""
        authz = self.policy.authz
        if authz is None or principal is None:
            return None
        item = None
        listed = next((t for t in view.tools if t.name == name), None)
        if route is not None:
            item = authz.tool(name, listed, route.backend)
        elif name in self._composites:  # a composite tool is the gateway's own (each step is checked too)
            item = authz.tool(name, listed)
        return functools.partial(authz.check, principal, item, arguments)

    def _check(
        self, principal: Principal | None, kind: str, name: str, route: Route | None, arguments: Any = None
    ) -> None:
        """Deny (as if missing) what ``principal`` may not use; an unknown item is denied alike."""
        authz = self.policy.authz
        if authz is not None and principal is not None:
            item = Item(kind, name, route.backend) if route is not None else None
            authz.check(principal, item, arguments)

    async def read_resource(self, uri: str, principal: Principal | None = None) -> types.ReadResourceResult:
        return types.ReadResourceResult.model_validate(await self.read_resource_raw(uri, principal))

    async def read_resource_raw(self, uri: str, principal: Principal | None = None) -> dict[str, Any]:
        route = self.view().route_resource(uri)
        if route is None:
            route = (await self.refresh(("resources", "resource_templates"))).route_resource(uri)
        self._check(principal, "resource", uri, route)
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}")
        return await _or_internal_error(self._call(route.backend, "resources/read", {"uri": route.name}))

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None, principal: Principal | None = None
    ) -> types.GetPromptResult:
        return types.GetPromptResult.model_validate(await self.get_prompt_raw(name, arguments, principal))

    async def get_prompt_raw(
        self, name: str, arguments: Mapping[str, str] | None, principal: Principal | None = None
    ) -> dict[str, Any]:
        route = self.view().prompt_routes.get(name)
        if route is None:
            route = (await self.refresh(("prompts",))).prompt_routes.get(name)
        self._check(principal, "prompt", name, route, arguments)
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {name}")
        params = {"name": route.name, "arguments": dict(arguments or {})}
        return await _or_internal_error(self._call(route.backend, "prompts/get", params))

    async def complete(self, params: types.CompleteRequestParams) -> types.CompleteResult:
        """``completion/complete`` for a prompt or a resource template, passed to the backend that owns it
        under its original name (an unknown one is -32602, like ``prompts/get``)."""
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            route = self.view().prompt_routes.get(ref.name)
            if route is None:
                route = (await self.refresh(("prompts",))).prompt_routes.get(ref.name)
            what = f"prompt: {ref.name}"
        else:
            route = self.view().template_routes.get(ref.uri)
            if route is None:
                route = (await self.refresh(("resource_templates",))).template_routes.get(ref.uri)
            what = f"resource template: {ref.uri}"
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown {what}")
        data = params.model_dump(by_alias=True, mode="json", exclude_none=True)
        key = "name" if isinstance(ref, types.PromptReference) else "uri"
        data["ref"] = {**data["ref"], key: route.name}
        data.pop("_meta", None)
        raw = await _or_internal_error(self._call(route.backend, "completion/complete", data))
        return types.CompleteResult.model_validate(raw)

    async def _call(
        self, backend: str, method: str, params: dict[str, Any], progress: ProgressFnT | None = None
    ) -> dict[str, Any]:
        connection = self.backends.get(backend)
        if connection is None:
            raise BackendUnavailableError(f"backend {backend!r} was removed")
        return await connection.call_raw(method, params, progress)

    # ---- status ----------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """Ready when at least one backend is routable (or none is configured)."""
        phase = overall_phase([b.health for b in self.backends.values()])
        return phase in ("Ready", "Degraded"), phase

    def status(self) -> dict[str, Any]:
        """The /status document: phase, per-backend health and the merge report."""
        healths = [b.health for b in self.backends.values()]
        view = self.view()
        return {
            "name": self.config.name,
            "phase": overall_phase(healths),
            "backendCount": sum(1 for h in healths if h.state in ("ready", "degraded")),
            "backends": backend_status_entries(healths),
            "toolCount": len(view.tools),
            "conflicts": [c.describe() for c in view.conflicts],
            "warnings": list(view.warnings),
            "reloads": self.reloads,
        }


def _tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


async def _or_internal_error(call: Coroutine[Any, Any, _R]) -> _R:
    try:
        return await call
    except CircuitOpenError as exc:
        raise MCPError(BACKEND_UNAVAILABLE, str(exc)) from exc
    except BackendUnavailableError as exc:
        raise MCPError(types.INTERNAL_ERROR, str(exc)) from exc
