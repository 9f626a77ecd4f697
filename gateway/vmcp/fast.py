"""The gateway's side of the front's fast path (:mod:`gateway.fastpath`): routed calls and cached lists.

:class:`GatewayFastHandler` serves, for the requests the fast path takes (docs/vmcp.md, "The fast path"):
``tools/call`` of a backend tool, ``prompts/get`` and ``resources/read`` routed by the merged view to the
owning backend's raw leg, and the four merged lists from the view. A list is answered as a
:class:`gateway.fastpath.CachedResult` keyed by the view it came from (and, with authorization on, by
what the caller may see), so it is shaped and encoded once per view and protocol version, not per
request. Everything else (composite tools, completion, cursors, names the view does not know) declines
and takes the SDK path, which answers it as before. The request policy (metrics, audit, authorization,
tracing) is the same one the SDK path's handlers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import Scope

from gateway import passthrough, tracing
from gateway.authz.entities import Principal
from gateway.fastpath import CachedResult, Notify
from gateway.request_policy import caller_of

from .aggregation import AggregatedView
from .backend import ListKind
from .codemode.hooks import code_mode_of, with_script_tool
from .codemode.script import EXECUTE_TOOL_SCRIPT
from .gateway import VirtualGateway

__all__ = ["LISTS", "GatewayFastHandler", "visible"]

LISTS: dict[str, tuple[ListKind, str, str, str]] = {
    "tools/list": ("tools", "tools", "tool_routes", "name"),
    "prompts/list": ("prompts", "prompts", "prompt_routes", "name"),
    "resources/list": ("resources", "resources", "resource_routes", "uri"),
    "resources/templates/list": (
        "resource_templates",
        "resourceTemplates",
        "template_routes",
        "uri_template",
    ),
}
"""Per list method: the view's list kind (also its attribute), the result field, the routing table and
the entry attribute that keys it."""


def visible(
    gateway: VirtualGateway, principal: Principal | None, view: AggregatedView, kind: ListKind
) -> list[Any]:
    """The view's ``kind`` list, only what ``principal`` may use when authorization is on."""
    entries = list(getattr(view, kind))
    authz = gateway.policy.authz
    if authz is None or principal is None:
        return entries
    _, field, routes, key = next(spec for spec in LISTS.values() if spec[0] == kind)
    table = getattr(view, routes)
    return authz.visible(principal, field, entries, lambda e: str(table[str(getattr(e, key))].backend))


class GatewayFastHandler:
    """:class:`gateway.fastpath.FastHandler` of the gateway (see the module docstring)."""

    def __init__(self, gateway: VirtualGateway) -> None:
        self.gateway = gateway
        self._view: AggregatedView | None = None
        """The view the cached lists were built from (held, so its entries' ids stay unique)."""
        self._serial = 0

    def can_serve(self, method: str, params: Mapping[str, Any]) -> bool:
        if method.startswith("tools/") and self.gateway.config.optimizer is not None:
            return False  # find_tool / call_tool answer on the SDK path (gateway.vmcp.optimizer)
        if method in LISTS:
            return params.get("cursor") is None
        view = self.gateway.view()
        if method == "tools/call":
            name = params.get("name")
            if name == EXECUTE_TOOL_SCRIPT and code_mode_of(self.gateway) is not None:
                return False  # the script runs on the SDK path (gateway.vmcp.codemode)
            return isinstance(name, str) and name in view.tool_routes
        if method == "prompts/get":
            name = params.get("name")
            return isinstance(name, str) and name in view.prompt_routes
        if method == "resources/read":
            uri = params.get("uri")
            return isinstance(uri, str) and view.route_resource(uri) is not None
        return False

    async def serve(
        self, method: str, params: dict[str, Any], scope: Scope, notify: Notify | None = None
    ) -> dict[str, Any] | CachedResult:
        allowed = self.gateway.passthrough
        if not allowed:  # the hot path without passthrough headers: no context to enter
            return await self._serve(method, params, scope)
        with passthrough.forwarding(scope, allowed):
            return await self._serve(method, params, scope)

    async def _serve(
        self, method: str, params: dict[str, Any], scope: Scope
    ) -> dict[str, Any] | CachedResult:
        gateway = self.gateway
        authz = gateway.policy.authz
        principal = authz.principal(scope) if authz is not None else None
        came = tracing.incoming(scope, params.get("_meta")) if tracing.enabled else None
        if method == "tools/call":
            arguments = params.get("arguments")
            return await gateway.call_tool_raw(
                params["name"], arguments, caller=caller_of(scope), principal=principal, came=came
            )
        if method == "prompts/get":
            name = params["name"]

            async def prompt() -> dict[str, Any]:
                return await gateway.get_prompt_raw(name, params.get("arguments"), principal)

            return await gateway.policy.timed(method, prompt, came=came, target=name)
        if method == "resources/read":
            uri = params["uri"]

            async def read() -> dict[str, Any]:
                return await gateway.read_resource_raw(uri, principal)

            return await gateway.policy.timed(method, read, came=came, target=uri)
        return await gateway.policy.timed(method, lambda: self._listing(method, principal), came=came)

    async def _listing(self, method: str, principal: Principal | None) -> CachedResult:
        kind, field, _, _ = LISTS[method]
        view = await self.gateway.listing(kind)
        if view is not self._view:
            self._view, self._serial = view, self._serial + 1
        entries = visible(self.gateway, principal, view, kind)
        # Within one view the entries' ids name them; with authorization on, the key is what this
        # caller may see, so callers seeing the same subset share one encoding.
        key = (self._serial, None if self.gateway.policy.authz is None else tuple(map(id, entries)))
        code_mode = code_mode_of(self.gateway) if kind == "tools" else None  # a new config is a new view

        def build() -> dict[str, Any]:
            listed = with_script_tool(code_mode, entries)
            return {field: [e.model_dump(by_alias=True, mode="json", exclude_none=True) for e in listed]}

        return CachedResult(key, build)
