"""The MCP proxy: a ``lowlevel.Server`` whose handlers forward to one shared backend session.

What it advertises, how progress, logs, server-to-client requests and cancellation are routed, and
which requests take which backend leg: docs/proxy.md. :class:`ProxyServer` is both the SDK path's
handler and the fast path's :class:`gateway.fastpath.FastHandler`; both apply one
:class:`gateway.request_policy.RequestPolicy`. :func:`build_proxy_app` assembles the ASGI app.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import mcp_types as types
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.types import ASGIApp, Scope

from api.authserver_config import AuthServerConfig
from api.proxy_config import ProxyConfig, ProxyConfigError
from gateway import sdk_private, tracing
from gateway.authz.enforce import REQUEST_ID, Authorization
from gateway.authz.engine import PolicyError
from gateway.backends.callers import Caller, CallerBackends, SubjectToken
from gateway.backends.connection import BackendConnection, BackendHooks, TransportFactory, running
from gateway.fastpath import FAST_METHODS, FastPath, Notify
from gateway.filters import ToolFilter
from gateway.front import FrontSettings, build_front_app, progress_relay
from gateway.observability import Auditor, ProxyMetrics
from gateway.replicas import replica_support
from gateway.request_policy import RequestPolicy, backend_params, caller_of
from gateway.sdk_private import SessionTable

__all__ = ["ProxyRuntime", "ProxyServer", "build_proxy_app"]

logger = logging.getLogger("mcp_operator.proxy")

Ctx = ServerRequestContext[Any, Any]
ResultT = TypeVar("ResultT", bound=BaseModel)

_BRIDGED: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "sampling/createMessage": (types.CreateMessageRequest, types.CreateMessageResult),
    "elicitation/create": (types.ElicitRequest, types.ElicitResult),
    "roots/list": (types.ListRootsRequest, types.ListRootsResult),
}
_LIST_HINT = CacheHint(ttl_ms=0, scope="private")


def _backend_params(params: BaseModel | None) -> dict[str, Any] | None:
    """The front params minus the front's own envelope (era keys, progress token)."""
    if params is None:
        return None
    return backend_params(params.model_dump(by_alias=True, mode="json", exclude_none=True))


def _caller_credentials(ctx: Ctx) -> Caller | None:
    """The authenticated caller (set by the inbound OIDC middleware), for per-caller backend sessions:
    with the embedded authorization server, the upstream token of the caller's sign-in."""
    scope = getattr(ctx.request, "scope", None)
    state = (scope.get("state") or {}) if isinstance(scope, dict) else {}
    validated = state.get("mcp_auth_token")
    identity = state.get("mcp_auth_identity")
    token = getattr(validated, "upstream", None) or getattr(validated, "raw", None)
    if isinstance(identity, str) and isinstance(token, str):
        return Caller(identity, token)
    return None


class ProxyServer(Server[Any]):
    """Forwards every MCP request to one backend session; see the module docstring."""

    def __init__(
        self,
        name: str,
        backend: BackendConnection | CallerBackends,
        *,
        tool_filter: ToolFilter | None = None,
        metrics: ProxyMetrics | None = None,
        auditor: Auditor | None = None,
        authz: Authorization | None = None,
    ) -> None:
        hints = {
            m: _LIST_HINT
            for m in ("tools/list", "resources/list", "resources/templates/list", "prompts/list")
        }
        super().__init__(
            name,
            version="0.1.0",
            cache_hints=hints,  # type: ignore[arg-type]
            on_list_tools=self._handler("tools/list"),
            on_call_tool=self._handler("tools/call"),
            on_list_resources=self._handler("resources/list"),
            on_list_resource_templates=self._handler("resources/templates/list"),
            on_read_resource=self._handler("resources/read"),
            on_list_prompts=self._handler("prompts/list"),
            on_get_prompt=self._handler("prompts/get"),
            on_completion=self._handler("completion/complete"),
            get_tool_input_schema=self._tool_input_schema,
        )
        self.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        self.middleware = []  # no per-message tracing span on the hot path
        self.backend = backend
        self.metrics = metrics or ProxyMetrics()
        self.policy = RequestPolicy(
            tool_filter or ToolFilter(), self.metrics, auditor or Auditor(), authz=authz
        )
        self.policy.list_tools = self._list_tools
        self._in_flight: dict[int, Ctx] = {}
        self._fast_in_flight: dict[object, Notify | None] = {}  # fast-path request -> its stream, if any
        backend.hooks.on_log = self._route_log
        backend.hooks.on_server_request = self._bridge_request
        if isinstance(backend, CallerBackends):
            shared = backend.hooks
            backend.hooks_for = lambda identity: self.hooks_for(identity, shared)

    def hooks_for(self, identity: str, base: BackendHooks) -> BackendHooks:
        """Hooks for one caller's own backend session: its logs and requests reach only that caller."""

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            await self._route_log(params, identity)

        async def on_server_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
            return await self._bridge_request(method, params, identity)

        return BackendHooks(
            on_log=on_log,
            on_server_request=on_server_request,
            on_restart=base.on_restart,
            on_state=base.on_state,
        )

    def _requests_of(self, identity: str | None) -> list[Ctx]:
        """In-flight front requests, only the given caller's when the backend session is per caller."""
        requests = list(self._in_flight.values())
        if identity is None:
            return requests
        return [
            c for c in requests if (who := _caller_credentials(c)) is not None and who.identity == identity
        ]

    # -- what the front advertises -----------------------------------------------------------------------

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        own = super().get_capabilities(
            notification_options, experimental_capabilities, extensions, protocol_version=protocol_version
        )
        info = self.backend.info
        if info is None:
            return types.ServerCapabilities(tools=own.tools)
        theirs = info.capabilities
        return types.ServerCapabilities(
            tools=own.tools if theirs.tools is not None else None,
            resources=own.resources if theirs.resources is not None else None,
            prompts=own.prompts if theirs.prompts is not None else None,
            completions=own.completions if theirs.completions is not None else None,
            logging=types.LoggingCapability() if theirs.logging is not None else None,
        )

    def refresh_identity(self) -> None:
        """Copy the backend's instructions (called when the backend (re)connects)."""
        info = self.backend.info
        self.instructions = info.instructions if info is not None else None

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """For the SDK's ``Mcp-Param-*`` header check on 2026-07-28 ``tools/call``: the schema from the
        latest listing seen (None = skip the check; the backend validates arguments itself). Without this
        hook the SDK would call ``tools/list`` (a backend round trip) before every call."""
        return self.policy.input_schemas.get(name)

    # -- forwarding --------------------------------------------------------------------------------------

    async def _forward(self, ctx: Ctx, method: str, backend_params: dict[str, Any] | None) -> dict[str, Any]:
        """The backend's raw result for one front request (see the module docstring for the route)."""
        on_progress = progress_relay(ctx)
        backend = self.backend
        key = id(ctx)
        self._in_flight[key] = ctx
        try:
            if on_progress is None and isinstance(backend, BackendConnection) and backend.raw_ready:
                # Nothing to route back but the answer: one raw frame, as on the fast path (the backend's
                # log messages and server-to-client requests still arrive through the SDK session).
                return await backend.forward_raw(method, backend_params)
            if isinstance(backend, CallerBackends):
                backend = backend.connection(_caller_credentials(ctx))
            return await backend.forward(method, backend_params, progress=on_progress)
        finally:
            self._in_flight.pop(key, None)

    def _handler(self, method: str) -> Callable[[Ctx, Any], Awaitable[Any]]:
        """The SDK-path handler of ``method``: the request policy, then the method's result model."""
        result_type = FAST_METHODS[method]

        async def handle(ctx: Ctx, params: BaseModel | None) -> Any:
            scope = getattr(ctx.request, "scope", None)
            forward = functools.partial(self._forward, ctx, method)
            REQUEST_ID.set(ctx.request_id)
            came = tracing.incoming(scope, ctx.meta) if tracing.enabled else None
            return result_type.model_validate(
                await self.policy.request(
                    method, _backend_params(params), caller_of(scope), forward, scope=scope, came=came
                )
            )

        return handle

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        info = self.backend.info
        if info is None or info.modern or info.capabilities.logging is None:
            return types.EmptyResult()  # nothing to forward: the level is per request on 2026-07-28
        # The backend session is shared: the most recent level set by any client applies to all.
        raw = await self._forward(ctx, "logging/setLevel", _backend_params(params))
        return types.EmptyResult.model_validate(raw)

    # -- the fast path (gateway.fastpath) ----------------------------------------------------------------

    def can_serve(self, method: str, params: Mapping[str, Any]) -> bool:
        """Whether :meth:`serve` can forward this now; False sends it down the SDK path (which answers
        hidden tools, waits for a reconnecting backend and drives 2026-07-28 backends)."""
        backend = self.backend
        if not isinstance(backend, BackendConnection) or not backend.raw_ready:
            return False
        if method == "tools/call":
            name = params.get("name")
            return isinstance(name, str) and self.policy.tool_filter.resolve(name) is not None
        return True

    async def serve(
        self, method: str, params: dict[str, Any], scope: Scope, notify: Notify | None = None
    ) -> dict[str, Any]:
        """Forward one raw request with the SDK path's policy (:class:`gateway.request_policy.
        RequestPolicy`); ``notify`` (a session-era request's own stream) receives the backend's log
        messages as the SDK path's request would."""
        backend = self.backend
        assert isinstance(backend, BackendConnection)  # can_serve checked it
        key = object()  # in flight for log routing, with its stream when it has one
        self._fast_in_flight[key] = notify
        try:
            forward = functools.partial(backend.forward_raw, method)
            came = tracing.incoming(scope, params.get("_meta")) if tracing.enabled else None
            return await self.policy.request(
                method, backend_params(params), caller_of(scope), forward, scope=scope, came=came
            )
        finally:
            del self._fast_in_flight[key]

    async def _list_tools(self) -> list[dict[str, Any]]:
        """Every tool of the shared backend session, all pages (per-caller sessions: none, so a call
        made before any listing is denied)."""
        backend = self.backend
        if not isinstance(backend, BackendConnection):
            return []
        tools: list[dict[str, Any]] = []
        params: dict[str, Any] | None = None
        for _ in range(100):  # a backend paging forever must not hold the call
            page = await backend.forward("tools/list", params)
            tools.extend(t for t in page.get("tools") or [] if isinstance(t, dict))
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str):
                break
            params = {"cursor": cursor}
        return tools

    # -- what the backend initiates ----------------------------------------------------------------------

    async def _route_log(
        self, params: types.LoggingMessageNotificationParams, identity: str | None = None
    ) -> None:
        requests = self._requests_of(identity)
        fast = list(self._fast_in_flight.values()) if identity is None else []
        if len(requests) + len(fast) != 1:
            logger.debug(
                "backend log message not routed: %d front requests in flight", len(requests) + len(fast)
            )
            return
        if fast:
            stream = fast[0]  # None: a 2026-07-28 request that did not opt in to log messages
            if stream is not None:
                message = params.model_dump(by_alias=True, mode="json", exclude_none=True)
                with contextlib.suppress(Exception):  # the front request may just have finished
                    await stream({"jsonrpc": "2.0", "method": "notifications/message", "params": message})
            return
        ctx = requests[0]
        notification = types.LoggingMessageNotification(params=params)
        with contextlib.suppress(Exception):  # the front request may just have finished
            await ctx.session.send_notification(notification, related_request_id=ctx.request_id)

    async def _bridge_request(
        self, method: str, params: dict[str, Any], identity: str | None = None
    ) -> dict[str, Any]:
        request_type, result_type = _BRIDGED[method]
        candidates = [c for c in self._requests_of(identity) if c.session.can_send_request]
        if not candidates:
            raise MCPError(
                code=types.INVALID_REQUEST,
                message=f"{method}: no connected client can answer server-initiated requests",
            )
        ctx = candidates[-1]
        payload: dict[str, Any] = {"method": method}
        if params:
            payload["params"] = params
        request = request_type.model_validate(payload)
        result = await ctx.session.send_request(
            request,  # type: ignore[arg-type]
            result_type,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _authorization(config: ProxyConfig, metrics: ProxyMetrics) -> Authorization | None:
    """The proxy's Cedar policies (None without ``authz``); a set that does not compile is refused."""
    if config.authz is None:
        return None
    try:
        auditor = Auditor(config.audit)
        return Authorization(config.authz, config.name, auditor=auditor, registry=metrics.registry)
    except PolicyError as exc:
        raise ProxyConfigError(f"authz: {exc}") from exc


def _embedded_auth_server(
    config: AuthServerConfig,
    resource_url: str,
    metrics: ProxyMetrics,
    closers: list[Callable[[], Awaitable[None]]],
    *,
    sessions_on_redis: bool,
) -> tuple[Callable[[Any], Any], list[Any]]:
    """The inbound middleware and the endpoints of the embedded authorization server."""
    from gateway.auth.inbound import OIDCMiddleware  # noqa: PLC0415 (only with inbound auth)
    from gateway.authserver.resource import build_auth_server  # noqa: PLC0415

    # With sessions on Redis too, their link already counts Redis commands in this registry.
    registry = None if sessions_on_redis else metrics.registry
    server = build_auth_server(config, resource_url=resource_url, registry=registry)
    closers.append(server.aclose)

    def wrap(app: Any) -> Any:
        return OIDCMiddleware(app, server.inbound, resource_url=resource_url, validator=server.validator)

    return wrap, list(server.routes)


@dataclass(frozen=True)
class ProxyRuntime:
    """The pieces of a running proxy, for the CLI and tests."""

    config: ProxyConfig
    backend: BackendConnection | CallerBackends
    server: ProxyServer

    @property
    def metrics(self) -> ProxyMetrics:
        return self.server.metrics


def build_proxy_app(
    config: ProxyConfig,
    transport: TransportFactory | None,
    *,
    description: str,
    wrap: Callable[[Any], Any] | None = None,
    resource_url: str | None = None,
    caller_transport: Callable[[Callable[[], str]], TransportFactory] | None = None,
    fast_path: bool = True,
) -> tuple[Starlette, ProxyRuntime]:
    """The proxy's ASGI app and runtime; the backend supervisor runs in the app's lifespan.

    ``transport`` opens the shared backend session. ``caller_transport`` instead opens one backend
    session per authenticated caller (given that caller's inbound token; needs ``config.oidc``), for a
    ``tokenExchange`` backend credential: see :mod:`gateway.backends.callers`.

    ``fast_path`` serves plain 2026-07-28 requests through :mod:`gateway.fastpath` (False: every request
    takes the SDK's server path; for comparisons). It is off whatever is asked when the installed SDK
    lacks a private name the fast path needs (:mod:`gateway.sdk_private`).
    """
    metrics = ProxyMetrics()
    hooks = BackendHooks(on_restart=metrics.backend_restarts.inc)
    timeout = config.limits.call_timeout_seconds
    backend: BackendConnection | CallerBackends
    if caller_transport is not None:
        if config.oidc is None and config.auth_server is None:
            raise ProxyConfigError(
                "backend.auth tokenExchange exchanges the caller's token: configure oidc (inbound auth) too"
            )
        make_transport = caller_transport

        def make(subject: SubjectToken) -> BackendConnection:
            return BackendConnection(
                make_transport(subject.get), description=description, call_timeout=timeout
            )

        backend = CallerBackends(make, hooks=hooks)
    elif transport is not None:
        backend = BackendConnection(transport, description=description, hooks=hooks, call_timeout=timeout)
    else:
        raise ValueError("build_proxy_app needs transport or caller_transport")
    server = ProxyServer(
        config.name,
        backend,
        tool_filter=ToolFilter(config.tool_filter),
        metrics=metrics,
        auditor=Auditor(config.audit),
        authz=_authorization(config, metrics),
    )

    def on_state(up: bool) -> None:
        metrics.backend_up.set(1 if up else 0)
        server.refresh_identity()

    hooks.on_state = on_state

    closers: list[Callable[[], Awaitable[None]]] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            async with running(backend):
                yield
        finally:
            for close in closers:
                await close()

    url = resource_url or f"http://{config.host}:{config.port}/mcp"
    extra_routes: list[Any] = []
    if wrap is None and config.auth_server is not None:
        wrap, extra_routes = _embedded_auth_server(
            config.auth_server, url, metrics, closers, sessions_on_redis=config.session_storage.redis
        )
    elif wrap is None and config.oidc is not None:
        from gateway.auth.inbound import OIDCMiddleware  # noqa: PLC0415 (only with inbound auth)

        oidc = config.oidc

        def wrap(app: Any) -> Any:
            middleware = OIDCMiddleware(app, oidc, resource_url=url)
            closers.append(middleware.aclose)  # its JWKS client
            return middleware

    def fast(fallback: ASGIApp, sessions: SessionTable) -> ASGIApp:
        return FastPath(
            fallback,
            server,
            server,
            max_body_bytes=config.limits.max_body_bytes,
            sessions=sessions,
            registry=metrics.registry,
        )

    fast_path = fast_path and sdk_private.STATUS.fast_path and isinstance(backend, BackendConnection)
    metrics.fast_path_enabled.set(1 if fast_path else 0)
    settings = FrontSettings(
        bind_host=config.host,
        max_body_bytes=config.limits.max_body_bytes,
        allowed_hosts=config.allowed_hosts,
        allowed_origins=config.allowed_origins,
        readiness=backend.readiness,
        registry=metrics.registry,
        lifespan=lifespan,
        wrap=wrap,
        extra_routes=extra_routes,
        fast_path=fast if fast_path else None,
        endpoint_prefix=config.endpoint_prefix,
        trust_proxy_headers=config.trust_proxy_headers,
    )
    settings.replicas = replica_support(
        config.session_storage,
        config.rate_limiting,
        name=config.name,
        metrics=metrics,
        auditor=server.policy.auditor,
        max_body_bytes=config.limits.max_body_bytes,
        session_idle_timeout=settings.session_idle_timeout,
    )
    app = build_front_app(server, settings)
    metrics.track_sessions(app.state.active_sessions)
    return app, ProxyRuntime(config, backend, server)
