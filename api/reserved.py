"""Reserved fields: ToolHive fields this API does not implement yet, declared so they fail closed.

A field the CRD schema does not declare is pruned by the API server without a word, and ``kubectl
apply --validate=false`` (kubectl's own hint when its client-side check fails) lets it through: an
MCPServer with ToolHive's ``oidcConfigRef`` would then be deployed with no authentication at all.
So every ToolHive field of our kinds that the operator does not implement is declared here once: the
CRD generator adds it to the schema (kept as written, never pruned) and :func:`reserved_problems`, run
on every object before anything else, refuses an object that sets it with ``Accepted=False`` naming
the field. A field moves out of this list when it is implemented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from api.problems import Problem

__all__ = [
    "RESERVED_FIELDS",
    "ReservedField",
    "ReservedFieldError",
    "declare_reserved",
    "lookup_path",
    "reserved_problems",
]

FieldShape = Literal["object", "string", "boolean", "integer", "list of objects", "list of strings"]

#: Values that mean the field is unset: the behaviour without the field is what the operator does.
_UNSET: tuple[Any, ...] = (None, False, "", [])


@dataclass(frozen=True)
class ReservedField:
    """One ToolHive field the operator refuses until it implements it."""

    path: str
    """Dotted JSON path from the object's root, e.g. ``spec.incomingAuth.authzConfig``."""
    shape: FieldShape
    """The JSON shape ToolHive gives the field (the declared schema keeps any content of it)."""
    meaning: str
    """What the field does in ToolHive, one short phrase, for ``kubectl explain`` and the docs."""
    instead: str = ""
    """What to use instead, when this API has an equivalent (ends the refusal message)."""
    inert: tuple[Any, ...] = ()
    """Further values that mean exactly what the operator does without the field (accepted)."""

    @property
    def message(self) -> str:
        """The refusal, after the field's path: says that it is refused and what to do."""
        fix = f"remove it, or {self.instead}" if self.instead else "remove it"
        return f"is not supported yet; {fix} (ToolHive: {self.meaning})"

    @property
    def description(self) -> str:
        """The schema description: ``kubectl explain`` tells the user before the operator does."""
        return (
            f"Not supported yet: an object that sets it is refused (Accepted=False). ToolHive: "
            f"{self.meaning}." + (f" Instead: {self.instead}." if self.instead else "")
        )


class ReservedFieldError(ValueError):
    """A reserved field's parent is not an object node of the schema (a mistake in the list)."""


def reserved_problems(data: dict[str, Any], fields: Iterable[ReservedField]) -> list[Problem]:
    """A Problem for every reserved field ``data`` (an object as stored) sets to a meaningful value."""
    problems = []
    for field in fields:
        present, value = lookup_path(data, field.path)
        if present and not _is_unset(value, field.inert):
            problems.append(Problem(field.path, field.message))
    return problems


def _is_unset(value: Any, inert: tuple[Any, ...]) -> bool:
    # ``False == 0`` in Python: compare types too, so an integer 0 is not taken for ``false``.
    return any(type(value) is type(v) and value == v for v in (*_UNSET, *inert))


def lookup_path(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    """``(True, value)`` of the dotted ``path`` in ``data``, or ``(False, None)`` when it is absent."""
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def declare_reserved(schema: dict[str, Any], fields: Iterable[ReservedField]) -> dict[str, Any]:
    """``schema`` (a kind's root structural schema) with every reserved field declared in place.

    Each field keeps whatever ToolHive writes into it (``x-kubernetes-preserve-unknown-fields`` below
    its declared type), so the API server stores it and the operator sees it to refuse it.
    """
    for field in fields:
        *parents, name = field.path.split(".")
        node = schema
        for part in parents:
            child = node.get("properties", {}).get(part)
            if child is None or child.get("type") != "object" or "properties" not in child:
                raise ReservedFieldError(f"{field.path}: {part} is not an object with properties")
            node = child
        if name in node["properties"]:
            raise ReservedFieldError(f"{field.path} is implemented; remove it from the reserved fields")
        node["properties"][name] = {"description": field.description, **_schema_of(field.shape)}
    return schema


def _schema_of(shape: FieldShape) -> dict[str, Any]:
    free_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if shape == "object":
        return free_object
    if shape == "list of objects":
        return {"type": "array", "items": free_object}
    if shape == "list of strings":
        return {"type": "array", "items": {"type": "string"}}
    return {"type": shape}


Row = tuple[str, FieldShape, str] | tuple[str, FieldShape, str, str]
"""A reserved field as data: path, shape, ToolHive's meaning and, optionally, what to use instead."""


def _fields(rows: Iterable[Row], prefix: str = "spec") -> tuple[ReservedField, ...]:
    return tuple(
        ReservedField(f"{prefix}.{path}", shape, meaning, instead[0] if instead else "")
        for path, shape, meaning, *instead in rows
    )


_PROXY_ROWS: tuple[Row, ...] = (
    (
        "telemetry",
        "object",
        "inline OpenTelemetry and Prometheus settings (earlier releases)",
        "scrape the proxy's /metrics, which it always serves",
    ),
    ("port", "integer", "the proxy port (earlier releases)", "set spec.proxyPort"),
)
"""What MCPServer and MCPRemoteProxy share (VirtualMCPServer places some of them elsewhere)."""

_SERVER_ROWS: tuple[Row, ...] = (
    ("webhookConfigRef", "object", "admission webhooks from an MCPWebhookConfig"),
    (
        "tools",
        "list of strings",
        "an allow-list of tools (earlier releases)",
        "reference an MCPToolConfig with spec.toolConfigRef",
    ),
    ("targetPort", "integer", "the MCP server's port (earlier releases)", "set spec.mcpPort"),
)

_VIRTUAL_ROWS: tuple[Row, ...] = (
    ("authServerConfig", "object", "an embedded OAuth authorization server for the gateway"),
    ("aggregation", "object", "aggregation settings (earlier releases)", "set spec.config.aggregation"),
    (
        "operational",
        "object",
        "timeouts and failure handling (earlier releases)",
        "set spec.config.operational",
    ),
    ("telemetry", "object", "inline OpenTelemetry settings (earlier releases)"),
    ("audit", "object", "audit logging of the gateway (earlier releases)", "set spec.config.audit"),
    (
        "compositeTools",
        "list of objects",
        "composite tools (earlier releases)",
        "set spec.config.compositeTools",
    ),
    (
        "compositeToolRefs",
        "list of objects",
        "composite tool references (earlier releases)",
        "set spec.config.compositeToolRefs",
    ),
)

_VIRTUAL_CONFIG_ROWS: tuple[Row, ...] = (
    ("audit.eventTypes", "list of strings", "the audit event types written (the gateway audits tool calls)"),
    ("audit.excludeEventTypes", "list of strings", "audit event types left out"),
    (
        "audit.logFile",
        "string",
        "a file the audit events go to",
        "read the gateway's mcp_operator.audit lines",
    ),
    ("backends", "list of objects", "static backends instead of the group's members"),
    ("groupRef", "string", "the group, repeated inside the runtime config"),
    ("incomingAuth", "object", "inbound authentication inside the runtime config"),
    ("metadata", "object", "free-form metadata of the runtime config"),
    ("name", "string", "the gateway's name inside the runtime config"),
    ("outgoingAuth", "object", "outbound authentication inside the runtime config"),
    ("sessionStorage", "object", "Redis session storage of the gateway", "set spec.sessionStorage"),
    (
        "operational.failureHandling.statusReportingInterval",
        "string",
        "how often the gateway reports backend health to the status",
    ),
)

_EXTERNAL_AUTH_ROWS: tuple[Row, ...] = (
    ("awsSts", "object", "AWS STS credentials for the backend"),
    ("obo", "object", "on-behalf-of token exchange"),
    ("upstreamInject", "object", "tokens injected from an upstream identity provider"),
    ("xaa", "object", "cross-app access token exchange"),
    ("tokenExchange.subjectProviderName", "string", "the upstream provider whose token is exchanged"),
)

_EMBEDDED_AUTH_ROWS: tuple[Row, ...] = (
    ("delegateClients", "list of objects", "pre-provisioned confidential clients for token exchange"),
    ("trustedIssuers", "list of objects", "external issuers whose tokens are exchanged"),
    ("cimd", "object", "client ID metadata documents instead of registration"),
    ("forceConfidentialRedirectUris", "list of strings", "redirect URIs always registered as confidential"),
    ("primaryUpstreamProvider", "string", "the upstream whose claims Cedar reads (VirtualMCPServer only)"),
    ("storage.redis.clusterMode", "boolean", "the Redis Cluster protocol"),
    ("storage.redis.sentinelTls", "object", "TLS towards the sentinels"),
    ("storage.redis.tls.insecureSkipVerify", "boolean", "Redis TLS without certificate verification"),
)
"""ToolHive's embedded authorization server fields the operator refuses (fields inside
``upstreamProviders`` items: :data:`api.embedded_auth.UNSUPPORTED_UPSTREAM_FIELDS`)."""

#: Per kind: the ToolHive fields the operator refuses until it implements them.
RESERVED_FIELDS: dict[str, tuple[ReservedField, ...]] = {
    "MCPServer": (
        *_fields(_PROXY_ROWS),
        *_fields(_SERVER_ROWS),
    ),
    "MCPRemoteProxy": (
        *_fields(_PROXY_ROWS),
        *_fields(
            [("remoteURL", "string", "the remote server's URL (earlier releases)", "set spec.remoteUrl")]
        ),
    ),
    "VirtualMCPServer": (
        *_fields(_VIRTUAL_ROWS),
        *_fields(_VIRTUAL_CONFIG_ROWS, "spec.config"),
    ),
    "MCPGroup": (),
    "MCPToolConfig": (),
    "MCPAuthzConfig": (),
    "MCPTelemetryConfig": (),
    "MCPExternalAuthConfig": (
        *_fields(_EXTERNAL_AUTH_ROWS),
        *_fields(_EMBEDDED_AUTH_ROWS, "spec.embeddedAuthServer"),
    ),
    "VirtualMCPCompositeToolDefinition": (),
    "MCPOIDCConfig": (),
    "MCPServerEntry": (),
    "EmbeddingServer": (),
}
