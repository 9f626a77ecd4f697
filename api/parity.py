"""The ToolHive parity tables of ``docs/toolhive-differences.md``, generated from this API.

Each ToolHive kind is provided or not (:data:`TOOLHIVE_KINDS`, :data:`api.registry.KINDS`); each spec
field of ToolHive's CRDs (one ``<Kind> <path>`` per line, ``tests/fixtures/toolhive-v1beta1-fields.txt``)
is ``supported`` (our schema has it, same meaning), ``different`` (ours, with a difference noted in
:data:`DIFFERENCES`) or ``refused`` (declared in :mod:`api.reserved`, refused with ``Accepted=False``).
``hack/generate.py`` writes the tables between markers, and fails its drift check when they are stale,
so the docs follow every field implemented or reserved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from api.crds import build_crd
from api.registry import KINDS
from api.reserved import RESERVED_FIELDS, ReservedField

__all__ = [
    "DIFFERENCES",
    "NOT_PLANNED_KINDS",
    "NOT_PORTING_BEGIN",
    "NOT_PORTING_END",
    "PARITY_BEGIN",
    "PARITY_END",
    "TOOLHIVE_KINDS",
    "FieldStatus",
    "declared",
    "field_status",
    "parse_field_list",
    "render_not_porting",
    "render_parity_tables",
    "spec_schema",
    "with_not_porting",
    "with_parity_tables",
]

FieldStatus = Literal["supported", "different", "refused", "undeclared"]

TOOLHIVE_KINDS: dict[str, str] = {
    "MCPServer": "",
    "MCPRemoteProxy": "",
    "VirtualMCPServer": "",
    "MCPGroup": "",
    "MCPToolConfig": "",
    "MCPExternalAuthConfig": "",
    "MCPOIDCConfig": "shared OIDC settings; configure the provider inline in `oidcConfig`",
    "MCPServerEntry": "a remote backend without a pod; use an `MCPRemoteProxy` in the group",
    "MCPTelemetryConfig": "shared OpenTelemetry settings; every proxy and gateway serves `/metrics`",
    "MCPAuthzConfig": "shared Cedar policies",
    "MCPWebhookConfig": "admission webhooks for MCP calls",
    "VirtualMCPCompositeToolDefinition": "composite tools (workflows over backend tools)",
    "EmbeddingServer": "",
    "MCPRegistry": "a registry API server of MCP server entries",
}
"""Every kind of ToolHive's operator; for one not provided here, what it does (the docs' reason)."""

NOT_PLANNED_KINDS = (
    "MCPWebhookConfig",
    "MCPRegistry",
)
"""ToolHive kinds outside this API's plans (the others are provided, or planned: the shared
configuration kinds ToolHive workloads reference)."""

_ISSUER_ADDRESSES = (
    "accepted; the identity provider is reached at any address the config names, private ones "
    "included (ToolHive: private addresses only when this or its twin flag is true)"
)
_PASSTHROUGH = (
    "also refused: the headers the gateway sets on backend requests (`Accept`, `Mcp-Method`, `Mcp-Name`, "
    "`Mcp-Param-*`, `traceparent`, ...); not sent to a legacy SSE backend"
)
_NO_AFFINITY = "unset means the Service's default, no affinity (ToolHive: ClientIP)"

DIFFERENCES: dict[tuple[str, str], str] = {
    ("MCPServer", "spec.resources"): "sizes the MCP server container (ToolHive: the proxy)",
    ("MCPServer", "spec.secrets"): "an atomic list; two entries setting one variable are refused",
    ("MCPServer", "spec.serviceAccount"): "the default account is `<name>-server`, without an API token",
    ("MCPServer", "spec.resourceOverrides"): "a clash with the operator's own labels is refused",
    ("MCPServer", "spec.replicas"): "more than 1 with `transport: stdio` is refused (ToolHive caps it)",
    ("MCPServer", "spec.mcpPort"): "refused with `transport: stdio` (ToolHive ignores it)",
    ("MCPServer", "spec.oidcConfig"): "an inline provider or the cluster's service account tokens",
    ("MCPServer", "spec.sessionAffinity"): _NO_AFFINITY,
    ("MCPRemoteProxy", "spec.sessionAffinity"): _NO_AFFINITY,
    ("VirtualMCPServer", "spec.sessionAffinity"): _NO_AFFINITY,
    ("MCPServer", "spec.permissionProfile"): "builtin none / network (a NetworkPolicy); configmap refused",
    ("MCPRemoteProxy", "spec.remoteUrl"): "a stricter pattern (a host is required)",
    ("MCPRemoteProxy", "spec.headerForward"): "credential headers in plain text are refused",
    ("MCPRemoteProxy", "spec.podTemplateSpec"): "patches container `proxy` (ToolHive: `toolhive`)",
    ("MCPRemoteProxy", "spec.oidcConfig"): "an inline provider or the cluster's service account tokens",
    ("VirtualMCPServer", "spec.config"): "typed: `aggregation`, `operational`, `compositeTools`, "
    "`compositeToolRefs`, `rateLimiting`, `optimizer`, `codeMode`, `telemetry`, `passthroughHeaders`; "
    "other keys refused",
    ("VirtualMCPServer", "spec.passthroughHeaders"): _PASSTHROUGH,
    ("VirtualMCPServer", "spec.config.audit"): "one line per tool call (ToolHive: every MCP operation); "
    "`enabled: false` turns it off (ToolHive's gateway audits whenever the block is present); "
    "`includeResponseData` and `detectApplicationErrors: false` refused",
    ("VirtualMCPServer", "spec.config.passthroughHeaders"): _PASSTHROUGH,
    ("MCPOIDCConfig", "spec.kubernetesServiceAccount.serviceAccount"): "accepts only that account's tokens "
    "(`sub`); ToolHive ignores it",
    ("MCPOIDCConfig", "spec.kubernetesServiceAccount.namespace"): "accepts only that namespace's service "
    "accounts (`sub`); ToolHive ignores it",
    ("MCPOIDCConfig", "spec.kubernetesServiceAccount.introspectionUrl"): "refused (tokens are JWTs)",
    ("MCPOIDCConfig", "spec.inline.jwksAllowPrivateIP"): _ISSUER_ADDRESSES,
    ("MCPOIDCConfig", "spec.inline.protectedResourceAllowPrivateIP"): _ISSUER_ADDRESSES,
    ("VirtualMCPServer", "spec.outgoingAuth"): "also `unauthenticated` per backend",
    ("VirtualMCPServer", "spec.config.optimizer"): "keyword search (BM25) also without the embedding "
    "service ToolHive's operator requires; a failing embedding service leaves find_tool to the keywords",
    ("EmbeddingServer", "spec.args"): "`--model-id` and `--port` are refused (from `model` and `port`)",
    ("EmbeddingServer", "spec.resourceOverrides"): "a clash with the operator's own labels is refused",
    ("EmbeddingServer", "spec.modelCache"): "a change replaces the StatefulSet, whose claim templates "
    "cannot change in place (ToolHive does not apply the change)",
    ("VirtualMCPServer", "spec.config.codeMode.stepLimit"): "counted in units of 1,000 steps of "
    "starlark-rust's interpreter (ToolHive: starlark-go's steps)",
    ("VirtualMCPServer", "spec.config.codeMode.parallelMaxConcurrency"): "at most 100",
}
"""Fields this API has with a difference a user may notice, per (kind, path); details in the docs."""

NOT_PORTING_BEGIN = (
    "<!-- The list is generated by hack/generate.py from "
    "tests/fixtures/toolhive-examples/not-porting.yaml. -->"
)
NOT_PORTING_END = "<!-- End of the generated list. -->"
PARITY_BEGIN = "<!-- The parity tables are generated by hack/generate.py from api/; do not edit them. -->"
PARITY_END = "<!-- End of the generated parity tables. -->"


def parse_field_list(text: str) -> list[tuple[str, str]]:
    """``(kind, path)`` pairs of a ToolHive field list (``#`` comments and blank lines skipped)."""
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            kind, path = line.split()
            pairs.append((kind, path))
    return pairs


def spec_schema(kind: str) -> dict[str, Any]:
    """The structural schema of ``kind``'s spec, as the generated CRD declares it."""
    version = build_crd(KINDS[kind])["spec"]["versions"][0]
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def declared(schema: dict[str, Any], path: str) -> bool:
    """Whether ``path`` (``spec.a.b[].c{}.d``) has a home in ``schema`` (a kind's spec schema): a
    property of its own, a map's values, or content kept as written below a free-form node."""
    node = schema
    for part in path.removeprefix("spec.").replace("[]", ".[]").replace("{}", ".{}").split("."):
        if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
            return True
        if part == "[]":
            node = node.get("items", {})
        elif part == "{}" or (part not in node.get("properties", {}) and "additionalProperties" in node):
            node = node.get("additionalProperties", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            return False
    return True


def _plain(path: str) -> str:
    return path.replace("[]", "").replace("{}", "")


def _reserved_ancestor(path: str, reserved: Iterable[ReservedField]) -> ReservedField | None:
    plain = _plain(path)
    for field in reserved:
        if plain == field.path or plain.startswith(field.path + "."):
            return field
    return None


def field_status(kind: str, path: str, schema: dict[str, Any] | None = None) -> FieldStatus:
    """How this API treats ToolHive's field ``path`` of ``kind`` (a kind it provides)."""
    if _reserved_ancestor(path, RESERVED_FIELDS[kind]) is not None:
        return "refused"
    if not declared(schema if schema is not None else spec_schema(kind), path):
        return "undeclared"
    return "different" if (kind, _plain(path)) in DIFFERENCES else "supported"


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0]


def _treatment(status: FieldStatus) -> str:
    """What a row tells: the field is refused, missing, or this API's (supported or with a difference)."""
    return "ours" if status in ("supported", "different") else status


def _field_rows(kind: str, status: dict[str, FieldStatus]) -> list[str]:
    """Rows for the fields whose treatment differs from their parent's (children repeat the parent)."""
    paths = list(status)
    rows = []
    for path in paths:
        parent = status.get(_parent(path), status[path])
        same = _treatment(parent) == _treatment(status[path]) and status[path] != "different"
        if path.count(".") > 1 and same:
            continue
        field = _reserved_ancestor(path, RESERVED_FIELDS[kind])
        if status[path] == "refused" and field is not None:
            note = field.meaning + (f"; instead: {field.instead}" if field.instead else "")
        else:
            note = DIFFERENCES.get((kind, _plain(path)), "")
        rows.append(f"| `{path}` | {status[path]} | {note.replace('|', '/')} |")
    return rows


def render_parity_tables(fields: Sequence[tuple[str, str]]) -> str:
    """The kinds table, then per provided kind a table of ToolHive's fields, between the markers."""
    lines = [PARITY_BEGIN, "", "| ToolHive kind | Here |", "|---|---|"]
    for kind, reason in TOOLHIVE_KINDS.items():
        lines.append(f"| `{kind}` | {'provided' if kind in KINDS else f'not provided: {reason}'} |")
    for kind in KINDS:
        paths = [p for k, p in fields if k == kind]
        if not paths:
            continue
        schema = spec_schema(kind)
        status = {p: field_status(kind, p, schema) for p in paths}
        counts = {s: list(status.values()).count(s) for s in ("supported", "different", "refused")}
        lines += [
            "",
            f"### {kind}: {len(paths)} ToolHive fields, {counts['supported']} supported, "
            f"{counts['different']} different, {counts['refused']} refused",
            "",
            "| ToolHive field | Here | Note |",
            "|---|---|---|",
            *_field_rows(kind, status),
        ]
    return "\n".join([*lines, "", PARITY_END])


def render_not_porting(
    entries: Sequence[dict[str, str]], total: int, refused: Sequence[dict[str, str]] = ()
) -> str:
    """The ToolHive examples that do not port (``object``, ``reason`` each), the share that does, and the
    ones ToolHive refuses too (``object``, ``toolhive``: its rule), counted apart."""
    accepted = total - len(refused)
    ported = accepted - len(entries)
    share = 100.0 * ported / accepted if accepted else 0.0
    lines = [
        NOT_PORTING_BEGIN,
        "",
        f"{ported} of the {accepted} objects ToolHive accepts ({share:.1f}%) port by changing only the API "
        f"group. The other {len(entries)}:",
        "",
        "| ToolHive example (source, object) | Why it does not port |",
        "|---|---|",
        *(f"| `{e['object']}` | {_reason(e).replace('|', '/')} |" for e in entries),
    ]
    if refused:
        lines += [
            "",
            f"The remaining {len(refused)} of the {total} objects are refused by ToolHive itself (a required "
            "field missing, a field or value its CRD does not have), so they cannot port and are not counted "
            "above; this API refuses them too:",
            "",
            "| ToolHive example (source, object) | The ToolHive rule that refuses it |",
            "|---|---|",
            *(f"| `{e['object']}` | {e['toolhive'].replace('|', '/')} |" for e in refused),
        ]
    return "\n".join([*lines, "", NOT_PORTING_END])


def _reason(entry: dict[str, str]) -> str:
    return entry["reason"] + (f" ({entry['note']})" if entry.get("note") else "")


def _replace_between(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the differences doc lacks the markers {begin!r} ... {end!r}")
    return text[:start] + body + text[stop + len(end) :]


def with_parity_tables(text: str, fields: Sequence[tuple[str, str]]) -> str:
    """``text`` (the differences doc) with its generated parity tables replaced by the current ones."""
    return _replace_between(text, PARITY_BEGIN, PARITY_END, render_parity_tables(fields))


def with_not_porting(
    text: str, entries: Sequence[dict[str, str]], total: int, refused: Sequence[dict[str, str]] = ()
) -> str:
    """``text`` (the differences doc) with its generated list of non-porting examples replaced."""
    body = render_not_porting(entries, total, refused)
    return _replace_between(text, NOT_PORTING_BEGIN, NOT_PORTING_END, body)
