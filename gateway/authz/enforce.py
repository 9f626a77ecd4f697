"""Enforcement of a Cedar policy set in the request policy: who the principal is, what a denial looks
like, the audit record and the metrics of each decision.

A denied ``tools/call``, ``prompts/get`` or ``resources/read`` and one naming an item that does not
exist get the same answer, ToolHive's JSON-RPC error ``{"code": 403, "message": "Unauthorized"}``, so a
client cannot probe for hidden items; lists hold only what the principal may use. A policy set that
fails to compile on reload is logged and the previous one stays in force (never fail open).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from mcp.shared.exceptions import MCPError
from prometheus_client import CollectorRegistry, Counter, Histogram

from api.authz_config import CedarConfig
from gateway.observability import AUDIT_LOGGER, Auditor

from .engine import Decision, ItemView, ListedKey, PolicyEngine, PolicyError
from .entities import Item, Principal, arguments_attributes, hints_of, principal_for, tool_hints

__all__ = [
    "DENIED_CODE",
    "DENIED_MESSAGE",
    "REQUEST_ID",
    "Authorization",
    "claims_of",
    "denied",
]

log = structlog.get_logger("gateway.authz")

DENIED_CODE = 403
"""ToolHive's JSON-RPC error code for a request its policies deny."""
DENIED_MESSAGE = "Unauthorized"
REQUEST_ID: contextvars.ContextVar[Any] = contextvars.ContextVar("mcp_request_id", default=None)
"""The JSON-RPC id of the front request being served (set by the front paths, read by the audit)."""
DENY_ALL = CedarConfig(policies=("forbid(principal, action, resource);",))
"""In force when configured policies cannot be compiled on a reload that turns authorization on."""
_PRINCIPALS_LIMIT = 4096
_LIST_FIELDS = {"tools": ("tool", "name"), "prompts": ("prompt", "name"), "resources": ("resource", "uri")}
_LIST_FIELDS_TEMPLATES = ("resource", "uriTemplate")
_LIST_METHODS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}


def _entry_fields(entry: object, field: str) -> tuple[Any, Any]:
    """The name (``field``) and the annotations of a list entry that is not a dict (an SDK model)."""
    if isinstance(entry, Mapping):
        return entry.get(field), entry.get("annotations")
    name = getattr(entry, "uri_template" if field == "uriTemplate" else field, None)
    return name, getattr(entry, "annotations", None)


def denied() -> MCPError:
    """The answer to a denied or unknown item (the same, so hidden items cannot be told from missing)."""
    return MCPError(code=DENIED_CODE, message=DENIED_MESSAGE)


def claims_of(scope: object) -> tuple[Mapping[str, Any] | None, str]:
    """The validated claims of a front request and a key of its token ((None, "") without a token)."""
    state = (scope.get("state") or {}) if isinstance(scope, dict) else {}
    claims = state.get("mcp_auth_claims")
    if not isinstance(claims, Mapping):
        return None, ""
    raw = getattr(state.get("mcp_auth_token"), "raw", None)
    return claims, raw if isinstance(raw, str) else repr(sorted(claims.items()))


class Authorization:
    """One workload's policy set in force, with its decision metrics and audit (see the module
    docstring). ``server``: the MCP server items come from when the caller names none (the proxy's)."""

    def __init__(
        self,
        config: CedarConfig,
        server: str,
        *,
        auditor: Auditor | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine = PolicyEngine(config)
        self.server = server
        self.auditor = auditor or Auditor()
        self._gate = logging.getLogger(AUDIT_LOGGER)
        self._audit = structlog.get_logger(AUDIT_LOGGER)
        self._principals: dict[str, Principal] = {}
        counter = Counter(
            "mcp_authz_decisions",
            "Authorization decisions by action and outcome (allow, deny).",
            ["action", "outcome"],
            registry=registry,
        )
        self._counters = {
            (action, outcome): counter.labels(action, outcome)
            for action in ("call_tool", "get_prompt", "read_resource")
            for outcome in ("allow", "deny")
        }
        self.seconds = Histogram(
            "mcp_authz_decision_seconds",
            "Time to decide one request or filter one list.",
            buckets=(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05),
            registry=registry,
        )

    @classmethod
    def fail_closed(
        cls, config: CedarConfig, server: str, *, auditor: Auditor, registry: CollectorRegistry
    ) -> Authorization:
        """An authorization for ``config`` that denies everything when ``config`` does not compile."""
        try:
            return cls(config, server, auditor=auditor, registry=registry)
        except PolicyError as exc:
            log.error("authorization policies refused; denying every request", error=str(exc))
            authz = cls(DENY_ALL, server, auditor=auditor, registry=registry)
            return authz

    def deny_all(self) -> None:
        """Deny every request (policies configured but unusable: never fail open)."""
        self.engine = PolicyEngine(DENY_ALL)
        self._principals.clear()

    def reload(self, config: CedarConfig) -> bool:
        """Put ``config`` in force; a set that does not compile is logged and the current one kept."""
        if config == self.engine.config:
            return False
        try:
            self.engine = PolicyEngine(config)
        except PolicyError as exc:
            log.error("authorization policies refused; keeping the policies in force", error=str(exc))
            return False
        self._principals.clear()
        log.info("authorization policies reloaded", policies=len(config.policies))
        return True

    def principal(self, scope: object) -> Principal:
        claims, key = claims_of(scope)
        principal = self._principals.get(key)
        if principal is None:
            principal = principal_for(claims, self.engine.config, self.engine.compiled.attributes)
            if len(self._principals) >= _PRINCIPALS_LIMIT:
                self._principals.clear()
            self._principals[key] = principal
        return principal

    # ---- single requests -------------------------------------------------------------------------

    def check(self, principal: Principal, item: Item | None, arguments: object = None) -> None:
        """Raise :func:`denied` unless ``principal`` may use ``item`` (None: no such item)."""
        start = time.perf_counter()
        if item is None:
            decision = Decision(False, (), "no such item")
        else:
            read = self.engine.compiled.attributes
            decision = self.engine.decide(principal, item, arguments_attributes(arguments, read))
        seconds = time.perf_counter() - start
        self.seconds.observe(seconds)
        action = item.action if item is not None else "unknown"
        outcome = "allow" if decision.allowed else "deny"
        counter = self._counters.get((action, outcome))
        if counter is not None:
            counter.inc()
        self._record(principal, action, item, decision, seconds)
        if not decision.allowed:
            raise denied()

    def tool(self, name: str, tool: object | None, server: str | None = None) -> Item | None:
        """The :class:`Item` of tool ``name`` as listed (``tool``: its listing entry, None: unknown)."""
        if tool is None:
            return None
        if isinstance(tool, Mapping):
            annotations = tool.get("annotations")
        else:
            annotations = getattr(tool, "annotations", None)
        return Item("tool", name, server or self.server, tool_hints(annotations))

    def named(self, kind: str, name: object, server: str | None = None) -> Item | None:
        return Item(kind, name, server or self.server) if isinstance(name, str) else None

    def check_request(self, principal: Principal, method: str, params: Mapping[str, Any] | None) -> None:
        """Decide a raw ``prompts/get``, ``resources/read`` or ``completion/complete`` (of a prompt's or
        a resource template's argument) by the item it names; other methods pass."""
        params = params or {}
        if method == "prompts/get":
            self.check(principal, self.named("prompt", params.get("name")), params.get("arguments"))
        elif method == "resources/read":
            self.check(principal, self.named("resource", params.get("uri")))
        elif method == "completion/complete":
            ref = params.get("ref")
            ref = ref if isinstance(ref, Mapping) else {}
            if ref.get("type") == "ref/prompt":
                self.check(principal, self.named("prompt", ref.get("name")))
            else:
                self.check(principal, self.named("resource", ref.get("uri")))

    def filter_result(self, principal: Principal, method: str, result: dict[str, Any]) -> dict[str, Any]:
        """A raw list result with only the entries the principal may use (other results unchanged)."""
        kind = _LIST_METHODS.get(method)
        entries = result.get(kind) if kind is not None else None
        if kind is None or not isinstance(entries, list):
            return result
        return {**result, kind: self.visible(principal, kind, entries)}

    # ---- lists -----------------------------------------------------------------------------------

    def visible(
        self,
        principal: Principal,
        kind: str,
        entries: list[Any],
        server_of: Callable[[Any], str] | None = None,
    ) -> list[Any]:
        """The entries of a list result (``kind``: its result key) the principal may use: each entry is
        reduced to what the policies tell apart (:class:`ItemView`), and the distinct ones are decided
        together (cached, else one engine call)."""
        item_kind, field = _LIST_FIELDS_TEMPLATES if kind == "resourceTemplates" else _LIST_FIELDS[kind]
        start = time.perf_counter()
        view = self.engine.view(principal, item_kind)
        keys = self._listed_keys(view, field, entries, server_of)
        distinct = [k for k in dict.fromkeys(keys) if k is not None]
        decisions = self.engine.decide_many(principal, [view.item(k) for k in distinct])
        allowed = {k for k, d in zip(distinct, decisions, strict=True) if d.allowed}
        shown = [e for e, k in zip(entries, keys, strict=True) if k in allowed]
        seconds = time.perf_counter() - start
        self.seconds.observe(seconds)
        self._record_list(principal, kind, len(shown), len(entries) - len(shown), seconds)
        return shown

    def _listed_keys(
        self, view: ItemView, field: str, entries: list[Any], server_of: Callable[[Any], str] | None
    ) -> list[ListedKey | None]:
        """Per entry, the key of its item as ``view`` sees it (None: an entry without a name, never
        shown). One loop without calls on the common path (raw JSON entries, no annotations the
        policies read), as it runs for every entry of every list."""
        names, hints, server = view.names, view.hints, self.server
        keys: list[ListedKey | None] = []
        for entry in entries:
            if isinstance(entry, dict):
                name, annotations = entry.get(field), entry.get("annotations")
            else:
                name, annotations = _entry_fields(entry, field)
            if name is None:
                keys.append(None)
                continue
            if not isinstance(name, str):
                name = str(name)
            named = names is None or name in names
            found = hints_of(annotations, hints) if hints and annotations else ()
            where = server if server_of is None else server_of(entry)
            keys.append((name if named else "", where, found, named))
        return keys

    # ---- audit -----------------------------------------------------------------------------------

    def _record(
        self, principal: Principal, action: str, item: Item | None, decision: Decision, seconds: float
    ) -> None:
        self._write(
            principal,
            seconds,
            action=f'Action::"{action}"',
            resource=item.label if item is not None else None,
            backend=item.server if item is not None else None,
            decision="allow" if decision.allowed else "deny",
            policies=list(decision.policies),
            reason=decision.reason,
        )

    def _record_list(self, principal: Principal, kind: str, shown: int, hidden: int, seconds: float) -> None:
        self._write(
            principal, seconds, action=f"list {kind}", decision="filter", allowed=shown, denied=hidden
        )

    def _write(self, principal: Principal, seconds: float, **fields: Any) -> None:
        """One audit line (nothing is built when the audit is off or its level is not enabled)."""
        if not self.auditor.config.enabled or not self._gate.isEnabledFor(logging.INFO):
            return
        self._audit.info(
            "authz",
            principal=principal.label,
            **fields,
            requestId=REQUEST_ID.get(),
            durationMs=round(seconds * 1000, 4),
        )
