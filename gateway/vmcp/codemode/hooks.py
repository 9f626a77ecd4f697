"""Code mode in the gateway's handlers: ``execute_tool_script`` listed after the caller's tools, its calls
run by :class:`~.runner.ScriptRunner`, everything else passed to the wrapped handler.

The hooks wrap the server's ``tools/list`` and ``tools/call`` handlers (and the input-schema lookup of
the 2026-07-28 front) as the optimizer's do, and read ``codeMode`` per request, so a hot reload turns
code mode on or off. Inside the optimizer they make ``execute_tool_script`` one of the tools
``find_tool`` searches and ``call_tool`` runs.

Security: the script is bound to the tools the caller may use (its description lists only those), and
every call it makes takes a token from the rate limits (``rateLimiting``) as a front call does and is
handed to the wrapped ``tools/call`` handler with the caller's own request context: the same routing,
Cedar decision, filters, failure handling, audit line and metrics as a direct call. A script can reach
nothing its caller cannot. ``execute_tool_script`` itself is the gateway's tool (not a backend's),
allowed to everyone once code mode is on, as in ToolHive; a backend tool of that name is hidden while
code mode is on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import mcp_types as types
from prometheus_client import CollectorRegistry, Counter, Histogram

from api.vmcp_config import CodeModeConfig
from gateway import tracing
from gateway.ratelimit import RateLimiter
from gateway.ratelimit.guard import MESSAGE as RATE_LIMITED
from gateway.request_policy import caller_of

from ..gateway import VirtualGateway
from .runner import ScriptRunner
from .script import (
    EXECUTE_TOOL_SCRIPT,
    Limits,
    ToolCallFailedError,
    bindings,
    error_result,
    input_schema,
    script_arguments,
    tool_description,
    tool_value,
)

__all__ = ["CodeMode", "code_mode_of", "with_script_tool"]

Ctx = Any
"""The SDK's request context (only passed through to the server's own handlers)."""
Usable = Callable[[Ctx], Awaitable[list[types.Tool]]]
"""For a request: the merged tools its caller may use."""
ListTools = Callable[[Ctx, Any], Awaitable[types.ListToolsResult]]
CallTool = Callable[[Ctx, types.CallToolRequestParams], Awaitable[types.CallToolResult]]
Came = Callable[[Ctx], tracing.Incoming | None]


def code_mode_of(gateway: VirtualGateway) -> CodeModeConfig | None:
    """The config's ``codeMode`` when it is enabled."""
    config = gateway.config.code_mode
    return config if config is not None and config.enabled else None


def script_tool(usable: Sequence[types.Tool]) -> types.Tool:
    """``execute_tool_script`` for a caller who may use ``usable``."""
    callable_tools = [(t.name, t.description or "") for t in usable if t.name != EXECUTE_TOOL_SCRIPT]
    return types.Tool(
        name=EXECUTE_TOOL_SCRIPT, description=tool_description(callable_tools), input_schema=input_schema()
    )


def with_script_tool(config: CodeModeConfig | None, tools: list[Any]) -> list[Any]:
    """``tools`` (a caller's) with ``execute_tool_script`` after them while code mode is on (a backend
    tool of that name left out)."""
    if config is None:
        return tools
    kept = [t for t in tools if t.name != EXECUTE_TOOL_SCRIPT]
    return [*kept, script_tool(kept)]


class CodeMode:
    """``execute_tool_script`` in front of the gateway's tool handlers (see the module docstring)."""

    def __init__(
        self,
        gateway: VirtualGateway,
        usable: Usable,
        came: Came,
        *,
        limiter: RateLimiter | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.gateway = gateway
        self.usable = usable
        self.came = came
        self.limiter = limiter
        self.runner = ScriptRunner()
        registry = registry if registry is not None else gateway.policy.metrics.registry
        self.scripts = Counter(
            "vmcp_code_mode_scripts_total",
            "Scripts execute_tool_script ran, by outcome (ok, error: the script failed or was stopped)",
            ["outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "vmcp_code_mode_script_duration_seconds",
            "Duration of execute_tool_script calls, inner tool calls included",
            registry=registry,
        )

    # ---- hooks -----------------------------------------------------------------------------------

    def list_tools(self, inner: ListTools) -> ListTools:
        """The ``tools/list`` handler: ``inner``'s tools, then ``execute_tool_script`` while on."""

        async def handle(ctx: Ctx, params: Any) -> types.ListToolsResult:
            result = await inner(ctx, params)
            config = code_mode_of(self.gateway)
            if config is None:
                return result
            return result.model_copy(update={"tools": with_script_tool(config, list(result.tools))})

        return handle

    def call_tool(self, inner: CallTool) -> CallTool:
        """The ``tools/call`` handler: ``execute_tool_script`` runs the script while on, whose calls
        are ``inner``'s; any other name is ``inner``'s."""

        async def handle(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
            config = code_mode_of(self.gateway)
            if config is None or params.name != EXECUTE_TOOL_SCRIPT:
                return await inner(ctx, params)

            async def forward(_: str) -> types.CallToolResult:
                return await self._execute(ctx, params, config, inner)

            scope = getattr(ctx.request, "scope", None)
            return await self.gateway.policy.tool_call(
                EXECUTE_TOOL_SCRIPT,
                EXECUTE_TOOL_SCRIPT,
                params.arguments,
                caller_of(scope),
                forward=forward,
                came=self.came(ctx),
            )

        return handle

    def input_schema(
        self, inner: Callable[[str], Mapping[str, Any] | None]
    ) -> Callable[[str], Mapping[str, Any] | None]:
        """The input schema the modern front checks ``Mcp-Param-*`` headers against."""

        def lookup(name: str) -> Mapping[str, Any] | None:
            if name == EXECUTE_TOOL_SCRIPT and code_mode_of(self.gateway) is not None:
                return input_schema()
            return inner(name)

        return lookup

    # ---- the tool --------------------------------------------------------------------------------

    async def _execute(
        self, ctx: Ctx, params: types.CallToolRequestParams, config: CodeModeConfig, inner: CallTool
    ) -> types.CallToolResult:
        usable = [t.name for t in await self.usable(ctx) if t.name != EXECUTE_TOOL_SCRIPT]
        bound = bindings(usable)
        parsed = script_arguments(params.arguments, bound)
        if isinstance(parsed, str):
            self.scripts.labels("error").inc()
            return types.CallToolResult.model_validate(error_result(parsed))
        script, data = parsed

        caller = caller_of(getattr(ctx.request, "scope", None))

        async def call(name: str, arguments: dict[str, Any]) -> Any:
            if name == EXECUTE_TOOL_SCRIPT:
                raise ToolCallFailedError(f"{EXECUTE_TOOL_SCRIPT} cannot be called from a script")
            if self.limiter is not None and (retry := await self.limiter.admit(name, caller)) is not None:
                raise ToolCallFailedError(f"tool {name!r}: {RATE_LIMITED} (retry after {retry}s)")
            result = await inner(ctx, types.CallToolRequestParams(name=name, arguments=arguments))
            return tool_value(result.model_dump(by_alias=True, mode="json", exclude_none=True))

        limits = Limits(
            step_limit=config.step_limit,
            parallel_max=config.parallel_max_concurrency,
            tool_call_timeout=config.tool_call_timeout,
        )
        start = time.perf_counter()
        raw = await self.runner.run(script, data, bound, limits, call)
        self.seconds.observe(time.perf_counter() - start)
        self.scripts.labels("error" if raw.get("isError") else "ok").inc()
        return types.CallToolResult.model_validate(raw)
