"""The data plane's HTTP front: one ASGI app on one port around one MCP request handler.

:func:`build_front_app` serves an ``mcp.server.lowlevel.Server`` (the proxy's or the gateway's) on
``/mcp`` (both eras, the SDK's session manager), ``/sse`` + ``/messages/`` (legacy), ``/health``,
``/readyz`` and ``/metrics`` (docs/proxy.md). :class:`HostOriginGuard` and :attr:`FrontSettings.wrap`
(inbound OIDC) cover the MCP routes only: kubelet calls the probes by pod IP. The handler's
``ctx.request_id`` is the front request (``related_request_id`` routes notifications onto its stream).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.dispatcher import ProgressFnT
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.replicas import ReplicaSupport
from gateway.sdk_private import SessionTable, open_sessions
from gateway.sessions_store import SessionRecall

__all__ = [
    "LOOPBACK_HOSTS",
    "LOOPBACK_ORIGINS",
    "FrontSettings",
    "HostOriginGuard",
    "announced_prefix",
    "build_front_app",
    "default_allowed_hosts",
    "progress_relay",
]

LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*")
LOOPBACK_ORIGINS: tuple[str, ...] = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")

Readiness = Callable[[], tuple[bool, str]]


def _always_ready() -> tuple[bool, str]:
    return True, "ok"


@dataclass
class FrontSettings:
    """How the front serves; every field has a safe local default."""

    bind_host: str = "127.0.0.1"
    """The address the server binds; decides the default Host allow-list."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Request bodies above this get HTTP 413."""
    allowed_hosts: Sequence[str] | None = None
    """Accepted Host values (``name:*`` = any port, ``*`` = any); None = :func:`default_allowed_hosts`."""
    allowed_origins: Sequence[str] | None = None
    """Accepted Origin values when the header is present; None = loopback origins."""
    readiness: Readiness = _always_ready
    """Called by ``/readyz``: ``(ready, reason)``."""
    registry: CollectorRegistry | None = None
    """Served on ``/metrics``; None = an empty registry."""
    lifespan: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None
    """Entered around serving (backend connections)."""
    wrap: Callable[[ASGIApp], ASGIApp] | None = None
    """Extra middleware around the MCP routes only (e.g. inbound OIDC)."""
    extra_routes: list[Route | Mount] = field(default_factory=list)
    """More routes served outside the MCP guard (e.g. RFC 9728 metadata)."""
    session_idle_timeout: float | None = 1800.0
    """Legacy sessions idle this long are closed."""
    fast_path: Callable[[ASGIApp, SessionTable], ASGIApp] | None = None
    """Wraps the SDK's streamable-HTTP handler of ``/mcp`` (the proxy's :mod:`gateway.fastpath`), given the
    front's 2025-11-25 sessions; inside the Host / Origin guard and ``wrap``."""
    replicas: ReplicaSupport | None = None
    """Sessions shared through Redis (around the fast path) and rate limits (inside ``wrap``, which
    authenticates the caller they key on): :mod:`gateway.replicas`."""
    endpoint_prefix: str = ""
    """Put before the message endpoint announced on ``/sse`` (an ingress strips it before forwarding)."""
    trust_proxy_headers: bool = False
    """Without ``endpoint_prefix``, announce the request's ``X-Forwarded-Prefix`` instead."""


def progress_relay(ctx: ServerRequestContext[Any, Any]) -> ProgressFnT | None:
    """Re-emits backend progress on the front request ``ctx``, when its caller asked for progress."""
    meta = ctx.meta or {}
    if meta.get("progress_token", meta.get("progressToken")) is None:
        return None
    session = ctx.session

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the call itself goes on
            await session.report_progress(progress, total, message)

    return relay


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """Loopback names when bound to loopback (DNS-rebinding protection); any host otherwise."""
    try:
        loopback = bind_host == "localhost" or ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        loopback = False
    return LOOPBACK_HOSTS if loopback else ("*",)


def _matches(value: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern in ("*", value):
            return True
        if pattern.endswith(":*") and value.startswith(pattern[:-1]):
            return True
    return False


def announced_prefix(scope: Scope, endpoint_prefix: str, trust_proxy_headers: bool) -> str:
    """The path prefix of the message endpoint announced on ``/sse``, as ToolHive chooses it.

    ``endpoint_prefix`` first, else (only when the reverse proxy in front is trusted) the request's
    ``X-Forwarded-Prefix``; normalised to ``/a/b`` (a trailing ``/sse``, the stream's own path, is not
    part of it). The announced endpoint stays a path: clients resolve it against the URL they
    connected to, so the forwarded host and scheme need no rewriting.
    """
    prefix = endpoint_prefix
    if not prefix and trust_proxy_headers:
        for key, value in scope["headers"]:
            if key == b"x-forwarded-prefix":
                prefix = value.decode("latin-1").strip()
                break
    prefix = prefix.strip("/")
    prefix = prefix.removesuffix("/sse") if prefix != "sse" else ""
    return f"/{prefix}" if prefix else ""


class HostOriginGuard:
    """ASGI middleware: 421 for a Host outside the allow-list, 403 for a present Origin outside its list."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str], allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.allowed_hosts = tuple(allowed_hosts)
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = origin = None
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value.decode("latin-1")
                elif key == b"origin":
                    origin = value.decode("latin-1")
            if host is None or not _matches(host, self.allowed_hosts):
                reply = PlainTextResponse(f"Invalid Host header: {host!r}", status_code=421)
                await reply(scope, receive, send)
                return
            if origin is not None and not _matches(origin, self.allowed_origins):
                await PlainTextResponse(f"Invalid Origin header: {origin!r}", status_code=403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


class _FrontApp(Starlette):
    """The front's Starlette app, with ``/mcp`` dispatched straight to the guarded MCP app.

    Every MCP request would otherwise walk Starlette's error and exception middleware, its router's
    route list and the catch-all mount before reaching the same guarded app; the probes, metrics, extra
    routes and ``/sse`` + ``/messages/`` still go through the router. An exception escaping the MCP app
    gets uvicorn's 500 instead of Starlette's (both log it).
    """

    mcp_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mcp_app is not None and scope["type"] == "http" and scope["path"] == "/mcp":
            scope["app"] = self
            await self.mcp_app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _PathDispatch:
    """One ASGI app for the MCP paths (so one guard / auth wrapper covers them all)."""

    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        sse: SseServerTransport,
        server: Server[Any],
        streamable: ASGIApp,
        settings: FrontSettings,
    ):
        self.manager = manager
        self.endpoint_prefix = settings.endpoint_prefix
        self.trust_proxy_headers = settings.trust_proxy_headers
        self.streamable = streamable
        self.sse = sse
        self.server = server
        self.sse_sessions = 0

    def active_sessions(self) -> int:
        """Open session-era front sessions: legacy SSE streams plus 2025-11-25 ``Mcp-Session-Id`` sessions."""
        return self.sse_sessions + open_sessions(self.manager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path in ("/mcp", "/mcp/"):
            await self.streamable(scope, receive, send)
        elif path == "/sse":
            # The SDK announces root_path + "/messages/": the prefix makes it the URL behind an ingress.
            prefix = announced_prefix(scope, self.endpoint_prefix, self.trust_proxy_headers)
            scope = {**scope, "root_path": prefix} if prefix else scope
            async with self.sse.connect_sse(scope, receive, send) as (read, write):
                self.sse_sessions += 1
                try:
                    await self.server.run(read, write, self.server.create_initialization_options())
                finally:
                    self.sse_sessions -= 1
        elif path.startswith("/messages"):
            await self.sse.handle_post_message(scope, receive, send)
        else:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)


def build_front_app(server: Server[Any], settings: FrontSettings | None = None) -> Starlette:
    """The Starlette app serving ``server`` on /mcp, /sse, /messages/ plus /health, /readyz, /metrics."""
    cfg = settings or FrontSettings()
    manager = StreamableHTTPSessionManager(
        app=server,
        json_response=False,
        stateless=False,
        security_settings=None,  # Host/Origin are checked once, by HostOriginGuard
        max_request_body_size=cfg.max_body_bytes,
        session_idle_timeout=cfg.session_idle_timeout,
    )
    sse = SseServerTransport("/messages/", max_request_body_size=cfg.max_body_bytes)
    streamable: ASGIApp = manager.handle_request
    table = None
    if cfg.fast_path is not None:
        table = SessionTable(manager, server)
        streamable = cfg.fast_path(streamable, table)
    replicas = cfg.replicas or ReplicaSupport()
    if replicas.session_store is not None:
        streamable = SessionRecall(streamable, manager, server, replicas.session_store, table=table)
    dispatch = _PathDispatch(manager, sse, server, streamable, cfg)
    mcp_app: ASGIApp = dispatch if replicas.rate_limit is None else replicas.rate_limit(dispatch)
    if cfg.wrap is not None:
        mcp_app = cfg.wrap(mcp_app)
    hosts = cfg.allowed_hosts if cfg.allowed_hosts is not None else default_allowed_hosts(cfg.bind_host)
    mcp_app = HostOriginGuard(
        mcp_app,
        allowed_hosts=hosts,
        allowed_origins=cfg.allowed_origins if cfg.allowed_origins is not None else LOOPBACK_ORIGINS,
    )
    registry = cfg.registry if cfg.registry is not None else CollectorRegistry()

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        ready, reason = cfg.readiness()
        return PlainTextResponse(reason, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        # The app's own registry, then the process-wide one: the auth and attach counters and the
        # process collectors (CPU, memory, file descriptors) are registered there, once per process.
        body = generate_latest(registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if cfg.lifespan is not None:
                await stack.enter_async_context(cfg.lifespan())
            await stack.enter_async_context(manager.run())
            stack.push_async_callback(replicas.aclose)
            yield

    routes: list[Route | Mount] = [
        Route("/health", health, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *cfg.extra_routes,
        Mount("/", app=mcp_app),
    ]
    app = _FrontApp(routes=routes, lifespan=lifespan)
    if not any(getattr(route, "path", None) == "/mcp" for route in cfg.extra_routes):
        app.mcp_app = mcp_app
    app.state.active_sessions = dispatch.active_sessions
    return app
