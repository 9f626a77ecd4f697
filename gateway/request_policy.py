"""The request policy over raw messages: tool filter and rename, metrics, audit.

One :class:`RequestPolicy` serves the proxy's SDK path, its fast path and the virtual gateway, so they
cannot drift (docs/proxy.md, "Tool matching rule"). Callers hand it the exposed tool name, the backend
name it resolved to (None: hidden or unknown, -32602, audited ``denied``) and a ``forward`` coroutine.
With ``authz`` (:mod:`gateway.authz`) every call, get and read is decided by the Cedar policies and every
list filtered to what the principal may use; hidden and unknown items then answer alike (403).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.authz.enforce import DENIED_CODE, Authorization
from gateway.filters import ToolFilter
from gateway.observability import Auditor, RequestMetrics

__all__ = ["RequestPolicy", "backend_params", "caller_of"]

ResultT = TypeVar("ResultT")

_RESERVED_META_PREFIX = "io.modelcontextprotocol/"


def backend_params(params: dict[str, Any]) -> dict[str, Any]:
    """The front params minus the front's own envelope (era keys, progress token), as raw JSON."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return params
    kept = {k: v for k, v in meta.items() if k != "progressToken" and not k.startswith(_RESERVED_META_PREFIX)}
    data = {k: v for k, v in params.items() if k != "_meta"}
    if kept:
        data["_meta"] = kept
    return data


def caller_of(scope: object) -> str:
    """The audit's caller: the authenticated identity, else the client address."""
    if isinstance(scope, dict):
        identity = (scope.get("state") or {}).get("mcp_auth_identity")
        if identity:
            return str(identity)
        client = scope.get("client")
        if client:
            return f"{client[0]}"
    return "anonymous"


@dataclass
class RequestPolicy:
    """Filter / rename, metrics and audit of front requests (see the module docstring)."""

    tool_filter: ToolFilter = field(default_factory=ToolFilter)
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    auditor: Auditor = field(default_factory=Auditor)
    input_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Input schemas of the tools listed last (exposed name -> schema)."""
    authz: Authorization | None = None
    """The Cedar policies in force (None: no authorization)."""
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The tools listed last as clients see them before authorization (exposed name -> raw tool): what
    a call is decided against (its annotations)."""
    list_tools: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    """Lists the backend's tools, for a call decided before any listing (the proxy sets it)."""

    async def timed(self, method: str, call: Callable[[], Awaitable[ResultT]]) -> ResultT:
        """Run a request that is not a tool call, counting its outcome and duration."""
        start = time.perf_counter()
        outcome = "error"
        try:
            result = await call()
            outcome = "ok"
            return result
        except MCPError as exc:
            outcome = "denied" if exc.error.code == DENIED_CODE else "error"
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        finally:
            self.metrics.observe(method, "", outcome, time.perf_counter() - start)

    async def tool_call(
        self,
        exposed: str,
        original: str | None,
        arguments: Any,
        caller: str,
        *,
        forward: Callable[[str], Awaitable[ResultT]],
        authorize: Callable[[], None] | None = None,
    ) -> ResultT:
        """``tools/call`` of the tool clients know as ``exposed``: forwarded under its backend name
        ``original`` (None: the tool is hidden or unknown) once ``authorize`` (raising a denial) passed."""
        start = time.perf_counter()
        outcome, error = "error", None
        try:
            if authorize is not None:
                authorize()
            if original is None:
                outcome = "denied"
                raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {exposed}")
            result = await forward(original)
            outcome = "tool_error" if _is_tool_error(result) else "ok"
            return result
        except MCPError as exc:
            error = exc.error.message
            if exc.error.code == DENIED_CODE:
                outcome = "denied"
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe("tools/call", exposed if original is not None else "", outcome, seconds)
            self.auditor.tool_call(
                caller, exposed, original, outcome, seconds, arguments=arguments, error=error
            )

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        caller: str,
        forward: Callable[[dict[str, Any] | None], Awaitable[dict[str, Any]]],
        scope: object = None,
    ) -> dict[str, Any]:
        """One raw front request under the policy (the proxy's two paths); ``forward(params)`` sends it to
        the backend, a tool call under its original name. ``scope``: the front request's (its principal)."""
        authz = self.authz
        if authz is not None:
            return await self._authorized(authz, method, params, caller, forward, scope=scope)
        if method == "tools/call" and params is not None:
            exposed = params["name"]

            async def call(original: str) -> dict[str, Any]:
                return await forward(params if original == exposed else {**params, "name": original})

            original = self.tool_filter.resolve(exposed)
            return await self.tool_call(exposed, original, params.get("arguments"), caller, forward=call)
        raw = await self.timed(method, lambda: forward(params))
        if method == "tools/list":  # a first page starts a new listing
            return self.tool_listing(raw, first_page=params is None or params.get("cursor") is None)
        return raw

    async def _authorized(
        self,
        authz: Authorization,
        method: str,
        params: dict[str, Any] | None,
        caller: str,
        forward: Callable[[dict[str, Any] | None], Awaitable[dict[str, Any]]],
        *,
        scope: object,
    ) -> dict[str, Any]:
        """:meth:`request` with the Cedar policies: decided before forwarding, lists filtered after."""
        principal = authz.principal(scope)
        if method == "tools/call" and params is not None:
            exposed = params["name"]

            async def call(original: str) -> dict[str, Any]:
                return await forward(params if original == exposed else {**params, "name": original})

            original = self.tool_filter.resolve(exposed)
            tool = self.tools.get(exposed) if original is not None else None
            if tool is None and original is not None and self.list_tools is not None and not self.tools:
                self.tool_listing({"tools": await self.list_tools()}, first_page=True)
                tool = self.tools.get(exposed)
            item = authz.tool(exposed, tool)
            check = functools.partial(authz.check, principal, item, params.get("arguments"))
            return await self.tool_call(
                exposed, original, params.get("arguments"), caller, forward=call, authorize=check
            )

        async def checked() -> dict[str, Any]:
            authz.check_request(principal, method, params)
            return await forward(params)

        raw = await self.timed(method, checked)
        if method == "tools/list":
            raw = self.tool_listing(raw, first_page=params is None or params.get("cursor") is None)
        return authz.filter_result(principal, method, raw)

    def tool_listing(self, result: dict[str, Any], *, first_page: bool) -> dict[str, Any]:
        """A raw ``tools/list`` result as clients see it: filtered and renamed, input schemas recorded."""
        tools = result.get("tools")
        if not isinstance(tools, list):
            return result
        if not self.tool_filter.identity:
            visible = self.tool_filter.apply(types.Tool.model_validate(tool) for tool in tools)
            tools = [tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in visible]
            result = {**result, "tools": tools}
        schemas = {
            tool["name"]: tool["inputSchema"]
            for tool in tools
            if isinstance(tool, dict)
            and isinstance(tool.get("name"), str)
            and isinstance(tool.get("inputSchema"), dict)
        }
        if first_page:
            self.input_schemas = schemas
        else:
            self.input_schemas.update(schemas)
        if self.authz is not None:
            listed = {t["name"]: t for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)}
            self.tools = listed if first_page else {**self.tools, **listed}
        return result


def _is_tool_error(result: object) -> bool:
    """Whether a ``tools/call`` result, raw (the fast path) or validated, reports ``isError: true``."""
    return bool(result.get("isError") if isinstance(result, dict) else getattr(result, "is_error", False))
