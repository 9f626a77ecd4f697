"""The tool optimizer (ToolHive's ``optimizer``): with ``optimizer`` in the config, the gateway's front lists
only two tools, ``find_tool`` and ``call_tool``, instead of the whole merged catalogue.

- ``find_tool`` (``tool_description``, optional ``tool_keywords``) ranks the merged tools the caller may
  use by keywords (:mod:`gateway.vmcp.tool_search`, BM25) and, with an ``embeddingService``, also by the
  meaning of the description (:mod:`gateway.vmcp.semantic_search`, :mod:`gateway.vmcp.hybrid_ranking`),
  and answers the best ``maxToolsToReturn`` of them as ``tools/list`` shows tools (name, description,
  input schema, ...), with ToolHive's ``token_metrics``, as JSON text and as structured content. The
  index is built from the cached merged list and rebuilt only when that list changes; so are the tools'
  embeddings.
- ``call_tool`` (``tool_name``, ``parameters``) hands the named tool and its arguments to the gateway's
  own ``tools/call`` handler, so routing, authorization, failure handling, audit and metrics are those of
  a direct call of that tool (an unknown or denied name answers what a direct call answers).

Other tool names are unknown while the optimizer is on, as in ToolHive. Bad arguments of the two tools
answer a tool error (``isError``) saying what to send, so a model can correct itself. The hooks wrap the
server's handlers (:meth:`ToolOptimizer.list_tools`, :meth:`ToolOptimizer.call_tool`,
:meth:`ToolOptimizer.input_schema`) and step aside when the config has no ``optimizer``: the setting is
read per request, so a hot reload turns it on or off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import mcp_types as types

from api.vmcp_config import OptimizerConfig
from gateway import tracing
from gateway.request_policy import caller_of

from .gateway import VirtualGateway
from .hybrid_ranking import merge, semantic_share
from .semantic_search import SemanticSearch
from .tool_search import ToolIndex

__all__ = ["CALL_TOOL", "FIND_TOOL", "META_TOOLS", "ToolOptimizer"]

FIND_TOOL = "find_tool"
CALL_TOOL = "call_tool"

TOKEN_BYTES = 4
"""Bytes of a tool's JSON per token, for ``token_metrics`` (ToolHive's estimate)."""

_FIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool_description": {
            "type": "string",
            "description": "What the tool should do, in a few words (e.g. 'add two numbers', 'search "
            "GitHub issues'); its words are matched against the tools' names, descriptions and "
            "parameter names, and, where the gateway has an embedding service, its meaning against "
            "the tools' names and descriptions.",
        },
        "tool_keywords": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Optional extra words to match (e.g. ['issues', 'github']).",
        },
    },
    "required": ["tool_description"],
}
_CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool_name": {"type": "string", "description": "The tool's name, as find_tool returned it."},
        "parameters": {
            "type": "object",
            "description": "The tool's arguments, shaped by the inputSchema find_tool returned for it.",
        },
    },
    "required": ["tool_name"],
}

META_TOOLS = (
    types.Tool(
        name=FIND_TOOL,
        description="Find the tools that can do a task. Searches every tool this server offers by "
        "keywords (and by meaning, where the gateway has an embedding service) and returns the best "
        "matches, each with its name, description and input schema. Call it before call_tool to learn "
        "a tool's exact name and arguments.",
        input_schema=_FIND_SCHEMA,
    ),
    types.Tool(
        name=CALL_TOOL,
        description="Run one tool found with find_tool: give its name and its arguments. The result is "
        "that tool's own result.",
        input_schema=_CALL_SCHEMA,
    ),
)
"""The only tools the front lists while the optimizer is on."""

_SCHEMAS = {t.name: t.input_schema for t in META_TOOLS}

Ctx = Any
"""The SDK's request context (only passed through to the server's own handlers)."""
Catalogue = Callable[[Ctx], Awaitable[tuple[Sequence[types.Tool], list[types.Tool]]]]
"""For a request: the merged tools, and those of them its caller may use."""
ListTools = Callable[[Ctx, Any], Awaitable[types.ListToolsResult]]
CallTool = Callable[[Ctx, types.CallToolRequestParams], Awaitable[types.CallToolResult]]
Came = Callable[[Ctx], tracing.Incoming | None]


class ToolOptimizer:
    """``find_tool`` / ``call_tool`` in front of the gateway's catalogue (see the module docstring)."""

    def __init__(self, gateway: VirtualGateway, catalogue: Catalogue, came: Came) -> None:
        self.gateway = gateway
        self.catalogue = catalogue
        self.came = came
        self._index = ToolIndex.build(())
        self._tokens: dict[str, int] = {}
        self.semantic = SemanticSearch(gateway.policy.metrics.registry)

    @property
    def config(self) -> OptimizerConfig | None:
        return self.gateway.config.optimizer

    def index(self, tools: Sequence[types.Tool]) -> ToolIndex:
        """The index of ``tools`` (the view's merged tuple): rebuilt only when the list changed."""
        if tools is not self._index.tools and tuple(tools) != self._index.tools:
            self._index = ToolIndex.build(tools)
            self._tokens = {t.name: len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in tools}
        return self._index

    async def _rank(
        self,
        config: OptimizerConfig,
        merged: Sequence[types.Tool],
        usable: Sequence[types.Tool],
        query: str,
        description: str,
    ) -> list[types.Tool]:
        """The tools ``find_tool`` answers: by keywords, and with an embedding service also by meaning
        (the semantic share of the places, :mod:`gateway.vmcp.hybrid_ranking`); by keywords alone when
        the service fails."""
        names = {t.name for t in usable}

        def allowed(tool: types.Tool) -> bool:
            return tool.name in names

        index = self.index(merged)
        most = config.max_tools_to_return
        share = semantic_share(most, config.semantic_ratio) if config.embedding_service is not None else 0
        near = await self.semantic.nearest(config, merged, allowed, description, share) if share else None
        if near is None:
            return index.search(query, most, allowed)
        return merge(near, index.search(query, most - share, allowed), most)

    # ---- hooks -----------------------------------------------------------------------------------

    def list_tools(self, inner: ListTools) -> ListTools:
        """The ``tools/list`` handler: the two meta-tools while the optimizer is on, else ``inner``."""

        async def handle(ctx: Ctx, params: Any) -> types.ListToolsResult:
            if self.config is None:
                return await inner(ctx, params)

            async def listed() -> types.ListToolsResult:
                return types.ListToolsResult(tools=list(META_TOOLS))

            return await self.gateway.policy.timed("tools/list", listed, came=self.came(ctx))

        return handle

    def call_tool(self, inner: CallTool) -> CallTool:
        """The ``tools/call`` handler: ``find_tool`` searches, ``call_tool`` becomes ``inner``'s call of
        the named tool, other names are unknown; all of it only while the optimizer is on."""

        async def handle(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
            config = self.config
            if config is None:
                return await inner(ctx, params)
            if params.name == CALL_TOOL:
                target = _call_target(params.arguments)
                if isinstance(target, tuple):
                    name, arguments = target
                    return await inner(ctx, params.model_copy(update={"name": name, "arguments": arguments}))
                return await self._answer(ctx, params, _error(target))
            if params.name == FIND_TOOL:
                return await self._answer(ctx, params, self._find(ctx, params.arguments, config))
            return await self._answer(ctx, params, None)

        return handle

    def input_schema(
        self, inner: Callable[[str], Mapping[str, Any] | None]
    ) -> Callable[[str], Mapping[str, Any] | None]:
        """The input schema the modern front checks ``Mcp-Param-*`` headers against."""

        def lookup(name: str) -> Mapping[str, Any] | None:
            return _SCHEMAS.get(name) if self.config is not None else inner(name)

        return lookup

    # ---- the two tools ---------------------------------------------------------------------------

    async def _answer(
        self,
        ctx: Ctx,
        params: types.CallToolRequestParams,
        answer: Coroutine[Any, Any, types.CallToolResult] | None,
    ) -> types.CallToolResult:
        """A call of a meta-tool (``answer``; None: an unknown name) through the request policy: counted,
        audited and traced like any ``tools/call``."""

        async def forward(_: str) -> types.CallToolResult:
            assert answer is not None  # the policy forwards only a known tool
            return await answer

        scope = getattr(ctx.request, "scope", None)
        return await self.gateway.policy.tool_call(
            params.name,
            params.name if answer is not None else None,
            params.arguments,
            caller_of(scope),
            forward=forward,
            came=self.came(ctx),
        )

    async def _find(
        self, ctx: Ctx, arguments: Mapping[str, Any] | None, config: OptimizerConfig
    ) -> types.CallToolResult:
        query = _find_query(arguments)
        if query is None:
            return await _error(
                'find_tool needs "tool_description": a string saying what the tool should do, e.g. '
                '{"tool_description": "add two numbers"}; "tool_keywords" is an optional list of strings'
            )
        merged, usable = await self.catalogue(ctx)
        found = await self._rank(config, merged, usable, query, _description(arguments))
        by_name = {t.name: t for t in usable}
        found = [by_name[t.name] for t in found]  # the caller's entry: execute_tool_script's lists its tools
        baseline = sum(self._tokens.get(t.name, 0) for t in usable) // TOKEN_BYTES
        returned = sum(self._tokens.get(t.name, 0) for t in found) // TOKEN_BYTES
        answer = {
            "tools": [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in found],
            "token_metrics": {
                "baseline_tokens": baseline,
                "returned_tokens": returned,
                "savings_percent": round((baseline - returned) / baseline * 100, 2) if baseline else 0.0,
            },
        }
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(answer))], structured_content=answer
        )


def _description(arguments: Mapping[str, Any] | None) -> str:
    """The ``tool_description`` of a valid ``find_tool`` call (what the semantic side embeds)."""
    return str((arguments or {}).get("tool_description", ""))


def _find_query(arguments: Mapping[str, Any] | None) -> str | None:
    """The words ``find_tool`` searches for (description and keywords), or None when they are missing."""
    arguments = arguments or {}
    description = arguments.get("tool_description")
    keywords = arguments.get("tool_keywords", [])
    if isinstance(keywords, str):
        keywords = [keywords]
    if not isinstance(description, str) or not description.strip():
        return None
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        return None
    return " ".join([description, *keywords])


def _call_target(arguments: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | str:
    """``(tool name, its arguments)`` of a ``call_tool`` call, or what is wrong with it. A ``tool_name``
    nested in ``parameters`` (a common slip of models) is taken out of them, as ToolHive does."""
    arguments = arguments or {}
    parameters = arguments.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return 'call_tool: "parameters" must be an object holding the tool\'s arguments'
    name = arguments.get("tool_name")
    if not name and isinstance(parameters.get("tool_name"), str):
        name = parameters["tool_name"]
        parameters = {k: v for k, v in parameters.items() if k != "tool_name"}
    if not isinstance(name, str) or not name:
        return (
            'call_tool needs "tool_name" (a name find_tool returned) and "parameters" (its arguments), '
            'e.g. {"tool_name": "github_list_issues", "parameters": {"repo": "x"}}'
        )
    return name, parameters


async def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)
