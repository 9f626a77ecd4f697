"""The gateway's MCP face: a low-level ``mcp`` Server whose handlers ask :class:`VirtualGateway`,
served by the shared data-plane front (``gateway.front``: ``/mcp`` both eras, ``/sse`` + ``/messages/``,
``/health``, ``/readyz``, ``/metrics``) plus ``/status`` (JSON backend health and merge report). Every
request is timed and counted by the request policy (``mcp_proxy_requests_total``, as in the proxy); tool
calls also get the audit line (:mod:`gateway.observability`).

``build_vmcp_app(config, config_path=..., ...)`` returns the Starlette app; its lifespan runs the
backends' supervisors, when ``config_path`` is given the config-file watcher, and in the cluster the
backend-health writer and the ConfigMap watch (:mod:`gateway.vmcp.config_feed`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
import structlog
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from api.scaling_config import SessionStorageConfig
from api.vmcp_config import VMCPConfig
from gateway import passthrough, sdk_private, tracing
from gateway.auth.inbound import OIDCMiddleware
from gateway.authz.enforce import REQUEST_ID, Authorization
from gateway.authz.entities import Principal
from gateway.fastpath import FastPath
from gateway.front import FrontSettings, build_front_app, progress_relay
from gateway.observability import Auditor, RequestMetrics
from gateway.ratelimit import RateLimiter
from gateway.replicas import replica_support
from gateway.request_policy import RequestPolicy, caller_of
from gateway.sdk_private import SessionTable, connection_of

from .backend import ListKind, TransportFor, open_backend_transport
from .codemode.hooks import CodeMode, code_mode_of, with_script_tool
from .composite import Elicit
from .config_feed import ConfigMapFeed
from .fast import GatewayFastHandler, visible
from .gateway import VirtualGateway
from .notify import NotifyingServer
from .optimizer import ToolOptimizer
from .reload import ConfigWatcher
from .status_writer import StatusTarget, StatusWriter

__all__ = ["GatewayCollector", "build_mcp_server", "build_vmcp_app"]

log = structlog.get_logger("gateway.vmcp.server")

Ctx = ServerRequestContext[Any, Any]


def build_mcp_server(gateway: VirtualGateway, *, limiter: RateLimiter | None = None) -> Server[Any]:
    """The low-level server: lists come from the merged view, calls are routed by it (``limiter``: the
    rate limits, which code-mode scripts' tool calls take tokens from as front calls do)."""

    timed = gateway.policy.timed
    relay = gateway.resources

    async def forward_client_headers(ctx: Ctx, call_next: CallNext) -> HandlerResult:
        if not gateway.passthrough:
            return await call_next(ctx)
        with passthrough.forwarding(_scope(ctx), gateway.passthrough):
            return await call_next(ctx)

    def came(ctx: Ctx) -> tracing.Incoming | None:
        return tracing.incoming(getattr(ctx.request, "scope", None), ctx.meta) if tracing.enabled else None

    def lister(method: str, kind: ListKind, result_type: Any, field: str) -> Any:
        async def handle(ctx: Ctx, params: types.PaginatedRequestParams | None) -> Any:
            async def call() -> Any:
                view = await gateway.listing(kind)
                return result_type(**{field: visible(gateway, principal(ctx), view, kind)})

            return await timed(method, call, came=came(ctx))

        return handle

    async def usable_tools(ctx: Ctx) -> list[types.Tool]:
        """The merged tools the caller may use: what a code-mode script may call."""
        return visible(gateway, principal(ctx), await gateway.listing("tools"), "tools")

    async def tool_catalogue(ctx: Ctx) -> tuple[tuple[types.Tool, ...], list[types.Tool]]:
        """The merged tools and those the caller may use (with ``execute_tool_script`` while code mode
        is on): what the optimizer searches."""
        view = await gateway.listing("tools")
        usable = visible(gateway, principal(ctx), view, "tools")
        config = code_mode_of(gateway)
        if config is None:
            return view.tools, usable
        return tuple(with_script_tool(config, list(view.tools))), with_script_tool(config, usable)

    def principal(ctx: Ctx) -> Principal | None:
        REQUEST_ID.set(ctx.request_id)
        authz = gateway.policy.authz
        return authz.principal(_scope(ctx)) if authz is not None else None

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = caller_of(_scope(ctx))
        progress = progress_relay(ctx)
        elicit = _elicitor(ctx)
        return await gateway.call_tool(
            params.name,
            params.arguments,
            caller=caller,
            progress=progress,
            elicit=elicit,
            principal=principal(ctx),
            came=came(ctx),
        )

    async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = functools.partial(gateway.get_prompt, params.name, params.arguments, principal(ctx))
        return await timed("prompts/get", prompt, came=came(ctx), target=params.name)

    async def read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri, who = str(params.uri), principal(ctx)
        read = functools.partial(gateway.read_resource, uri, who)
        return await timed("resources/read", read, came=came(ctx), target=uri)

    async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        await timed("resources/subscribe", lambda: relay.subscribe(str(params.uri), connection_of(ctx)))
        return types.EmptyResult()

    async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        await timed("resources/unsubscribe", lambda: relay.unsubscribe(str(params.uri), connection_of(ctx)))
        return types.EmptyResult()

    async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        return await timed("completion/complete", lambda: gateway.complete(params), came=came(ctx))

    optimizer = ToolOptimizer(gateway, tool_catalogue, came)
    code_mode = CodeMode(gateway, usable_tools, came, limiter=limiter)
    server = NotifyingServer(
        gateway.config.name,
        version="mcp-operator vmcp",
        instructions=f"Virtual MCP server {gateway.config.name!r} aggregating several MCP servers.",
        get_tool_input_schema=optimizer.input_schema(code_mode.input_schema(gateway.tool_input_schema)),
        on_list_tools=optimizer.list_tools(
            code_mode.list_tools(lister("tools/list", "tools", types.ListToolsResult, "tools"))
        ),
        on_call_tool=optimizer.call_tool(code_mode.call_tool(call_tool)),
        on_list_prompts=lister("prompts/list", "prompts", types.ListPromptsResult, "prompts"),
        on_get_prompt=get_prompt,
        on_list_resources=lister("resources/list", "resources", types.ListResourcesResult, "resources"),
        on_list_resource_templates=lister(
            "resources/templates/list",
            "resource_templates",
            types.ListResourceTemplatesResult,
            "resource_templates",
        ),
        on_read_resource=read_resource,
        on_completion=complete,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_subscriptions_listen=relay.listen_handler(gateway.notifier.listen),
    )
    # The request policy's span replaces the SDK's per-message one (gateway.tracing).
    server.middleware = [forward_client_headers]
    gateway.notifier.install(server)
    return server


def _scope(ctx: Ctx) -> object:
    return getattr(ctx.request, "scope", None)


def _elicitor(ctx: Ctx) -> Elicit | None:
    """How a composite tool's elicitation step asks this request's client: ``elicitation/create`` on its
    2025-11-25 session when it declared the capability (the 2026-07-28 era allows no request mid-call)."""
    session = ctx.session
    capabilities = session.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return None
    if session.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None

    async def elicit(message: str, schema: dict[str, Any]) -> types.ElicitResult:
        return await session.elicit_form(message, schema, related_request_id=ctx.request_id)

    return elicit


class GatewayCollector(Collector):
    """Prometheus metrics read from the gateway at scrape time (no global state)."""

    def __init__(self, gateway: VirtualGateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "vmcp_backend_up", "1 when the backend is routable (ready or degraded)", labels=["backend"]
        )
        breaker = GaugeMetricFamily(
            "vmcp_backend_circuit_open", "1 when the backend's circuit breaker is open", labels=["backend"]
        )
        tools = GaugeMetricFamily("vmcp_backend_tools", "Tools the backend lists", labels=["backend"])
        in_flight = GaugeMetricFamily("vmcp_backend_in_flight", "Requests in flight", labels=["backend"])
        for name, backend in sorted(self.gateway.backends.items()):
            health = backend.health
            up.add_metric([name], 1.0 if health.state in ("ready", "degraded") else 0.0)
            breaker.add_metric([name], 1.0 if health.breaker.state == "open" else 0.0)
            tools.add_metric([name], float(health.tool_count))
            in_flight.add_metric([name], float(backend.in_flight))
        exposed = GaugeMetricFamily("vmcp_exposed_tools", "Tools in the merged list")
        exposed.add_metric([], float(len(self.gateway.view().tools)))
        conflicts = GaugeMetricFamily("vmcp_conflicts", "Name conflicts in the merged lists")
        conflicts.add_metric([], float(len(self.gateway.view().conflicts)))
        yield from (up, breaker, tools, in_flight, exposed, conflicts)


def _start_cluster_tasks(
    tg: anyio.abc.TaskGroup, gateway: VirtualGateway, config_path: str | Path | None
) -> None:
    """In the cluster (``VMCP_NAME`` / ``VMCP_NAMESPACE``): the backend-health writer, and the ConfigMap
    watch when ``VMCP_CONFIG_MAP`` names the gateway's ConfigMap."""
    target = StatusTarget.from_env()
    if target is None:
        return
    writer = StatusWriter(target, lambda: list(gateway.status()["backends"]))
    tg.start_soon(writer.run)
    config_map = os.environ.get("VMCP_CONFIG_MAP")
    if config_map:
        key = Path(config_path).name if config_path is not None else "vmcp.yaml"
        feed = ConfigMapFeed(target, config_map, key, lambda: gateway.config, gateway.apply_config)
        tg.start_soon(feed.run)


def build_vmcp_app(
    config: VMCPConfig,
    *,
    config_path: str | Path | None = None,
    bind_host: str = "127.0.0.1",
    port: int = 8080,
    transport: TransportFor = open_backend_transport,
    reload_interval: float = 1.0,
    fast_path: bool = True,
) -> tuple[Starlette, VirtualGateway]:
    """The gateway's ASGI app and its core (the core is returned for tests and embedding).

    ``fast_path`` serves plain requests through :mod:`gateway.fastpath` with :class:`GatewayFastHandler`
    (False: every request takes the SDK's server path; for comparisons); off whatever is asked when the
    installed SDK lacks a private name the fast path needs (:mod:`gateway.sdk_private`)."""
    registry = CollectorRegistry()
    policy = RequestPolicy(metrics=RequestMetrics(registry), auditor=Auditor(config.audit))
    if config.incoming_auth.authz is not None:  # a set that does not compile stops the start-up
        policy.authz = Authorization(
            config.incoming_auth.authz, config.name, auditor=policy.auditor, registry=registry
        )
    gateway = VirtualGateway(config, transport=transport, policy=policy)
    passthrough.enable()
    registry.register(GatewayCollector(gateway))

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            await tg.start(gateway.run)
            if config_path is not None:
                watcher = ConfigWatcher(config_path, gateway.apply_config, interval=reload_interval)
                tg.start_soon(watcher.run)
            _start_cluster_tasks(tg, gateway, config_path)
            yield
            tg.cancel_scope.cancel()

    async def status(_: Request) -> Response:
        return JSONResponse(gateway.status())

    wrap = None
    oidc = config.incoming_auth.oidc if config.incoming_auth.type == "oidc" else None
    if oidc is not None:
        resource_url = f"http://{bind_host}:{port}/mcp"

        def wrap(app: ASGIApp) -> ASGIApp:
            return OIDCMiddleware(app, oidc, resource_url=resource_url)

    settings = FrontSettings(
        bind_host=bind_host,
        readiness=gateway.readiness,
        registry=registry,
        lifespan=lifespan,
        wrap=wrap,
        extra_routes=[Route("/status", status, methods=["GET"])],
    )
    settings.replicas = replica_support(
        config.session_storage or SessionStorageConfig(),
        config.rate_limiting,
        name=config.name,
        metrics=policy.metrics,
        auditor=policy.auditor,
        max_body_bytes=settings.max_body_bytes,
        session_idle_timeout=settings.session_idle_timeout,
    )
    server = build_mcp_server(gateway, limiter=settings.replicas.limiter if settings.replicas else None)
    fast_path = fast_path and sdk_private.STATUS.fast_path
    policy.metrics.fast_path_enabled.set(1 if fast_path else 0)
    if fast_path:
        handler = GatewayFastHandler(gateway)

        def fast(fallback: ASGIApp, sessions: SessionTable) -> ASGIApp:
            return FastPath(
                fallback,
                handler,
                server,
                max_body_bytes=settings.max_body_bytes,
                sessions=sessions,
                registry=registry,
            )

        settings.fast_path = fast
    return build_front_app(server, settings), gateway
