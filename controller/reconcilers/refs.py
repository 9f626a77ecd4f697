"""References between objects: cache indexes (who refers to X) and resolution (does X exist).

Index functions read raw cached dicts, not parsed models, so an object whose spec does not parse is
still found when what it refers to appears. Values are ``namespace/name`` (references are same-namespace).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from api.authz import AuthzConfigRef, config_map_cedar_config
from api.authz_config import CedarConfig
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import CONFIGMAP, SECRET, Cache, ObjectKey, Resource, Watch
from controller.reconcilers.kinds import (
    EMBEDDINGSERVER,
    MCPAUTHZCONFIG,
    MCPEXTERNALAUTHCONFIG,
    MCPGROUP,
    MCPOIDCCONFIG,
    MCPTELEMETRYCONFIG,
    MCPTOOLCONFIG,
)

JSON = dict[str, Any]
M = TypeVar("M", bound=BaseModel)

TOOL_CONFIG_INDEX = "ref:toolConfig"
GROUP_INDEX = "ref:group"
SECRET_INDEX = "ref:secret"
EXTERNAL_AUTH_INDEX = "ref:externalAuthConfig"
OIDC_CONFIG_INDEX = "ref:oidcConfig"
AUTHZ_CONFIG_INDEX = "ref:authzConfig"
AUTHZ_CONFIG_MAP_INDEX = "ref:authzConfigMap"
TELEMETRY_INDEX = "ref:telemetryConfig"
EMBEDDING_SERVER_INDEX = "ref:embeddingServer"


def _namespace(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _spec(obj: JSON) -> JSON:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ref_name(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        return str(value["name"])
    return None


def _keyed(obj: JSON, names: list[str | None]) -> list[str]:
    namespace = _namespace(obj)
    return sorted({f"{namespace}/{n}" for n in names if n})


def index_tool_config(obj: JSON) -> list[str]:
    return _keyed(obj, [_ref_name(_spec(obj).get("toolConfigRef"))])


def index_group(obj: JSON) -> list[str]:
    return _keyed(obj, [_ref_name(_spec(obj).get("groupRef"))])


def index_external_auth(obj: JSON) -> list[str]:
    """The MCPExternalAuthConfigs a workload names: its backend credential and its embedded
    authorization server (``spec.authServerRef``)."""
    spec = _spec(obj)
    return _keyed(obj, [_ref_name(spec.get("externalAuthConfigRef")), _ref_name(spec.get("authServerRef"))])


def index_oidc_config(obj: JSON) -> list[str]:
    """The MCPOIDCConfig a workload names: ``spec.oidcConfigRef``, or for a VirtualMCPServer
    ``spec.incomingAuth.oidcConfigRef`` (one index function for the three workload kinds)."""
    spec = _spec(obj)
    incoming = spec.get("incomingAuth")
    nested = incoming.get("oidcConfigRef") if isinstance(incoming, dict) else None
    return _keyed(obj, [_ref_name(spec.get("oidcConfigRef")), _ref_name(nested)])


def referenced(index: Callable[[JSON], list[str]]) -> Callable[[JSON], list[ObjectKey]]:
    """Watch mapper: the objects an object refers to, by one of the index functions above (called for
    the old and the new version of an edit, so a re-pointed reference enqueues both)."""

    def keys(obj: JSON) -> list[ObjectKey]:
        out = []
        for value in index(obj):
            namespace, _, name = value.partition("/")
            out.append(ObjectKey(namespace, name))
        return out

    return keys


def index_authz_config(obj: JSON) -> list[str]:
    return _keyed(obj, [_ref_name(_spec(obj).get("authzConfigRef"))])


def index_authz_config_map(obj: JSON) -> list[str]:
    """The ConfigMap holding the policies of ``spec.authzConfig`` (or ``spec.incomingAuth.authzConfig``)."""
    spec = _spec(obj)
    incoming = spec.get("incomingAuth")
    authz = spec.get("authzConfig") or (incoming.get("authzConfig") if isinstance(incoming, dict) else None)
    return _keyed(obj, [_ref_name(authz.get("configMap"))] if isinstance(authz, dict) else [])


def index_watch(cache: Cache, watched: Resource, resource: Resource, index: str) -> Watch:
    """Events of ``watched`` objects enqueue the ``resource`` objects whose ``index`` names them."""

    def keys(obj: JSON) -> list[ObjectKey]:
        meta = obj.get("metadata") or {}
        value = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        return [ObjectKey.of(o) for o in cache.by_index(resource, index, value)]

    return Watch(watched, keys)


def authz_config_map_watch(cache: Cache, resource: Resource) -> Watch:
    """ConfigMap events enqueue the ``resource`` objects whose ``authzConfig`` reads that ConfigMap."""
    return index_watch(cache, CONFIGMAP, resource, AUTHZ_CONFIG_MAP_INDEX)


def config_map_value(cache: Cache, namespace: str, name: str, key: str) -> tuple[str | None, str]:
    """The text of the cached ConfigMap ``name``'s ``key``, or None and what is missing."""
    raw = cache.get(CONFIGMAP, namespace, name)
    text = ((raw or {}).get("data") or {}).get(key)
    if raw is None:
        return None, f"ConfigMap '{name}' does not exist"
    return (text, "") if isinstance(text, str) else (None, f"ConfigMap '{name}' has no key '{key}'")


def config_map_policies(
    cache: Cache, namespace: str, ref: AuthzConfigRef | None, field: str, missing: list[Missing]
) -> CedarConfig | None:
    """The policies of an ``authzConfig`` of ``type: configMap`` (None: another type, or a problem reported
    in ``missing``, which keeps the workload from being rendered without them)."""
    if ref is None or ref.type != "configMap" or ref.config_map is None:
        return None
    name, key = ref.config_map.name, ref.config_map.key
    text, what = config_map_value(cache, namespace, name, key)
    if text is None:
        missing.append(
            Missing(f"{field}.configMap", "AuthzConfigNotFound", f"{what}; create it or fix {field}")
        )
        return None
    try:
        return config_map_cedar_config(text, ref)
    except ValueError as exc:
        message = f"ConfigMap '{name}' key '{key}': {exc}; fix it (the running policies stay in force)"
        missing.append(Missing(f"{field}.configMap", "AuthzConfigInvalid", message))
        return None


def index_telemetry(obj: JSON) -> list[str]:
    return _keyed(obj, [_ref_name(_spec(obj).get("telemetryConfigRef"))])


def secret_names(spec: JSON) -> list[str | None]:
    """Every Secret a workload spec refers to (env secrets, OIDC client secret, forwarded headers)."""
    names: list[str | None] = []
    for item in spec.get("secrets") or []:
        names.append(_ref_name(item))
    oidc = spec.get("oidcConfig")
    if isinstance(oidc, dict) and isinstance(oidc.get("inline"), dict):
        names.append(_ref_name(oidc["inline"].get("clientSecretRef")))
    forward = spec.get("headerForward")
    if isinstance(forward, dict):
        for item in forward.get("addHeadersFromSecret") or []:
            if isinstance(item, dict):
                names.append(_ref_name(item.get("valueSecretRef")))
    return names


def index_secrets(obj: JSON) -> list[str]:
    return _keyed(obj, secret_names(_spec(obj)))


WORKLOAD_INDEXES: dict[str, Callable[[JSON], list[str]]] = {
    TOOL_CONFIG_INDEX: index_tool_config,
    GROUP_INDEX: index_group,
    SECRET_INDEX: index_secrets,
    EXTERNAL_AUTH_INDEX: index_external_auth,
    OIDC_CONFIG_INDEX: index_oidc_config,
    AUTHZ_CONFIG_INDEX: index_authz_config,
    AUTHZ_CONFIG_MAP_INDEX: index_authz_config_map,
    TELEMETRY_INDEX: index_telemetry,
}


def register_workload_indexes(cache: Cache, resource: Resource) -> None:
    """Index ``resource`` (MCPServer, MCPRemoteProxy) by everything it can refer to."""
    for name, func in WORKLOAD_INDEXES.items():
        cache.add_index(resource, name, func)


def referrer_watches(cache: Cache, resource: Resource) -> list[Watch]:
    """Watches that enqueue the ``resource`` objects referring to a changed config, group or Secret."""

    def mapper(index: str) -> Callable[[JSON], list[ObjectKey]]:
        def keys(obj: JSON) -> list[ObjectKey]:
            meta = obj.get("metadata") or {}
            value = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            return [ObjectKey.of(o) for o in cache.by_index(resource, index, value)]

        return keys

    return [
        Watch(MCPTOOLCONFIG, mapper(TOOL_CONFIG_INDEX)),
        Watch(MCPGROUP, mapper(GROUP_INDEX)),
        Watch(SECRET, mapper(SECRET_INDEX)),
        Watch(MCPEXTERNALAUTHCONFIG, mapper(EXTERNAL_AUTH_INDEX)),
        Watch(MCPOIDCCONFIG, mapper(OIDC_CONFIG_INDEX)),
        Watch(MCPAUTHZCONFIG, mapper(AUTHZ_CONFIG_INDEX)),
        authz_config_map_watch(cache, resource),
        Watch(MCPTELEMETRYCONFIG, mapper(TELEMETRY_INDEX)),
    ]


def strip_secret_values(obj: JSON) -> JSON:
    """Cache transform for Secrets: keep which keys exist, never the values (no secrets in memory)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        meta.pop("annotations", None)
    for section in ("data", "stringData"):
        values = obj.get(section)
        if isinstance(values, dict):
            obj[section] = dict.fromkeys(values, "")
    return obj


@dataclass(frozen=True)
class Missing:
    """One unresolved reference: the field that names it, a condition reason and a message with the fix."""

    field: str
    reason: str
    message: str


@dataclass
class Resolved:
    """The outcome of resolving a workload's references against the cache."""

    tool_config: JSON | None = None
    external_auth: JSON | None = None
    auth_server: JSON | None = None
    authz_config: JSON | None = None
    group: JSON | None = None
    oidc_config: JSON | None = None
    missing: list[Missing] = field(default_factory=list)


def parse_ref(model: type[M], raw: JSON | None, field: str, missing: list[Missing]) -> M | None:
    """A referenced object (MCPToolConfig, MCPExternalAuthConfig) as its model, parsed AND checked by its
    kind's rules: one that fails them is never used, and every workload kind reports it the same way
    (``ResolvedRefs=False``, reason ``<Kind>Invalid``). ``raw`` None (not found) is reported by the caller.
    """
    if raw is None:
        return None
    parsed, problems = parse_and_validate(raw)
    if isinstance(parsed, model) and not problems:
        return parsed
    name = (raw.get("metadata") or {}).get("name")
    kind = model.__name__
    missing.append(
        Missing(
            field,
            f"{kind.removeprefix('MCP')}Invalid",
            f"{kind} '{name}' is invalid (see its Accepted condition): {format_problems(problems)}",
        )
    )
    return None


GROUP_NOT_FOUND = "GroupNotFound"
"""The reason of a missing MCPGroup: it blocks neither the children nor the readiness of a proxy workload
(the workload serves on its own; it is only not part of a gateway until the group exists)."""

# (spec field, kind shown in messages, resource, Resolved attribute, reason when missing)
_OBJECT_REFS = (
    ("toolConfigRef", "MCPToolConfig", MCPTOOLCONFIG, "tool_config", "ToolConfigNotFound"),
    (
        "externalAuthConfigRef",
        "MCPExternalAuthConfig",
        MCPEXTERNALAUTHCONFIG,
        "external_auth",
        "ExternalAuthConfigNotFound",
    ),
    (
        "authServerRef",
        "MCPExternalAuthConfig",
        MCPEXTERNALAUTHCONFIG,
        "auth_server",
        "AuthServerConfigNotFound",
    ),
    ("authzConfigRef", "MCPAuthzConfig", MCPAUTHZCONFIG, "authz_config", "AuthzConfigNotFound"),
    ("groupRef", "MCPGroup", MCPGROUP, "group", GROUP_NOT_FOUND),
    ("oidcConfigRef", "MCPOIDCConfig", MCPOIDCCONFIG, "oidc_config", "OIDCConfigNotFound"),
)


def resolve(cache: Cache, namespace: str, spec: JSON) -> Resolved:
    """Look up every reference of a workload spec (raw dict) in the cache."""
    out = Resolved()
    for spec_field, kind, resource, attribute, reason in _OBJECT_REFS:
        name = _ref_name(spec.get(spec_field))
        if not name:
            continue
        found = cache.get(resource, namespace, name)
        setattr(out, attribute, found)
        if found is None:
            out.missing.append(not_found(f"spec.{spec_field}", kind, name, namespace, reason))
    out.missing += missing_secrets(cache, namespace, spec)
    return out


def not_found(ref_field: str, kind: str, name: str, namespace: str, reason: str) -> Missing:
    """The object ``ref_field`` (a reference's path) names does not exist."""
    return Missing(
        f"{ref_field}.name",
        reason,
        f"{kind} '{name}' does not exist in namespace '{namespace}'; create it or remove {ref_field}",
    )


def missing_secrets(cache: Cache, namespace: str, spec: JSON) -> list[Missing]:
    """Secrets (or keys) a spec (raw dict) names in ``secrets``, ``oidcConfig`` or ``headerForward`` that
    do not exist."""
    wanted: list[tuple[str, str, str]] = []  # (field, secret, key)
    for i, item in enumerate(spec.get("secrets") or []):
        if isinstance(item, dict) and item.get("name"):
            wanted.append((f"spec.secrets[{i}]", str(item["name"]), str(item.get("key", ""))))
    oidc = spec.get("oidcConfig")
    if isinstance(oidc, dict) and isinstance(oidc.get("inline"), dict):
        ref = oidc["inline"].get("clientSecretRef")
        if isinstance(ref, dict) and ref.get("name"):
            wanted.append(
                ("spec.oidcConfig.inline.clientSecretRef", str(ref["name"]), str(ref.get("key", "")))
            )
    forward = spec.get("headerForward")
    if isinstance(forward, dict):
        for i, item in enumerate(forward.get("addHeadersFromSecret") or []):
            ref = item.get("valueSecretRef") if isinstance(item, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                field_path = f"spec.headerForward.addHeadersFromSecret[{i}].valueSecretRef"
                wanted.append((field_path, str(ref["name"]), str(ref.get("key", ""))))
    missing = []
    for field_path, secret_name, key in wanted:
        secret = cache.get(SECRET, namespace, secret_name)
        if secret is None:
            missing.append(
                Missing(
                    f"{field_path}.name",
                    "SecretNotFound",
                    f"Secret '{secret_name}' does not exist in namespace '{namespace}'; create it",
                )
            )
        elif key and key not in {**(secret.get("data") or {}), **(secret.get("stringData") or {})}:
            missing.append(
                Missing(
                    f"{field_path}.key",
                    "SecretKeyNotFound",
                    f"Secret '{secret_name}' has no key '{key}'; add it to the Secret or fix the key",
                )
            )
    return missing


# -- MCPExternalAuthConfig: the Secrets it names, and who refers to it -------------------------------------

_AUTH_SECRET_FIELDS = (
    ("headerInjection", "valueSecretRef"),
    ("bearerToken", "tokenSecretRef"),
    ("oauth2ClientCredentials", "clientSecretRef"),
    ("tokenExchange", "clientSecretRef"),
)


def auth_config_secret_refs(spec: JSON) -> list[tuple[str, str, str]]:
    """``(field, secret, key)`` of every Secret key an MCPExternalAuthConfig spec (raw dict) names."""
    refs = []
    for block, ref_field in _AUTH_SECRET_FIELDS:
        section = spec.get(block)
        ref = section.get(ref_field) if isinstance(section, dict) else None
        if isinstance(ref, dict) and _ref_name(ref):
            refs.append((f"spec.{block}.{ref_field}", str(ref["name"]), str(ref.get("key", ""))))
    embedded = spec.get("embeddedAuthServer")
    if isinstance(embedded, dict):
        refs += [
            (f"spec.embeddedAuthServer.{path}", str(ref["name"]), str(ref.get("key", "")))
            for path, ref in _secret_refs_below(embedded, "")
        ]
    return refs


def _secret_refs_below(node: Any, path: str) -> list[tuple[str, JSON]]:
    """``(path, ref)`` of every ``...SecretRef`` / ``...SecretRefs`` entry below ``node`` (raw dict)."""
    found: list[tuple[str, JSON]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        at = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
        if (
            isinstance(key, str)
            and key.endswith("SecretRef")
            and isinstance(value, dict)
            and _ref_name(value)
        ):
            found.append((at, value))
        elif isinstance(key, str) and key.endswith("SecretRefs") and isinstance(value, list):
            found += [(f"{at}[{i}]", ref) for i, ref in enumerate(value) if _ref_name(ref)]
        else:
            found += _secret_refs_below(value, at)
    return found


def index_auth_config_secrets(obj: JSON) -> list[str]:
    """Index MCPExternalAuthConfigs by the Secrets they name (``SECRET_INDEX`` on that kind)."""
    return _keyed(obj, [name for _, name, _ in auth_config_secret_refs(_spec(obj))])


def missing_auth_secrets(cache: Cache, namespace: str, auth_name: str, spec: JSON) -> list[Missing]:
    """Secrets (or keys) an MCPExternalAuthConfig names that do not exist; fields are the config's."""
    refs = auth_config_secret_refs(spec)
    return missing_config_secrets(cache, namespace, f"MCPExternalAuthConfig '{auth_name}'", refs)


def oidc_config_secret_refs(spec: JSON) -> list[tuple[str, str, str]]:
    """``(field, secret, key)`` of the client secret an MCPOIDCConfig spec (raw dict) names."""
    inline = spec.get("inline")
    ref = inline.get("clientSecretRef") if isinstance(inline, dict) else None
    if isinstance(ref, dict) and _ref_name(ref):
        return [("spec.inline.clientSecretRef", str(ref["name"]), str(ref.get("key", "")))]
    return []


def index_oidc_config_secrets(obj: JSON) -> list[str]:
    """Index MCPOIDCConfigs by the Secret they name (``SECRET_INDEX`` on that kind)."""
    return _keyed(obj, [name for _, name, _ in oidc_config_secret_refs(_spec(obj))])


def missing_config_secrets(
    cache: Cache, namespace: str, config: str, refs: list[tuple[str, str, str]]
) -> list[Missing]:
    """Secrets (or keys) a shared configuration names that do not exist (``refs``: its ``(field,
    secret, key)``; ``config``: ``Kind 'name'``, for the messages)."""
    missing = []
    for field_path, secret_name, key in refs:
        secret = cache.get(SECRET, namespace, secret_name)
        at = f"{config} {field_path}"
        if secret is None:
            missing.append(
                Missing(
                    f"{field_path}.name",
                    "SecretNotFound",
                    f"{at}: Secret '{secret_name}' does not exist in namespace '{namespace}'; create it",
                )
            )
        elif key and key not in {**(secret.get("data") or {}), **(secret.get("stringData") or {})}:
            missing.append(
                Missing(
                    f"{field_path}.key",
                    "SecretKeyNotFound",
                    f"{at}: Secret '{secret_name}' has no key '{key}'; add the key or fix the reference",
                )
            )
    return missing


def vmcp_external_auth_names(spec: JSON) -> list[str]:
    """MCPExternalAuthConfig names a VirtualMCPServer spec (raw dict) refers to in ``outgoingAuth``."""
    outgoing = spec.get("outgoingAuth")
    if not isinstance(outgoing, dict):
        return []
    entries = [outgoing.get("default"), *((outgoing.get("backends") or {}).values())]
    names = {_ref_name(entry.get("externalAuthConfigRef")) for entry in entries if isinstance(entry, dict)}
    return sorted(n for n in names if n)


def secret_to_auth_referrers(cache: Cache, resource: Resource) -> Watch:
    """Secret events enqueue the ``resource`` objects whose MCPExternalAuthConfig names that Secret."""
    return secret_to_config_referrers(cache, resource, MCPEXTERNALAUTHCONFIG, EXTERNAL_AUTH_INDEX)


def secret_to_configs(cache: Cache, config: Resource) -> Watch:
    """Secret events enqueue the ``config`` objects (indexed by ``SECRET_INDEX``) that name that Secret."""
    return index_watch(cache, SECRET, config, SECRET_INDEX)


def secret_to_config_referrers(cache: Cache, resource: Resource, config: Resource, ref_index: str) -> Watch:
    """Secret events enqueue the ``resource`` objects that refer (``ref_index``) to a shared ``config``
    naming that Secret (the config kind indexed by ``SECRET_INDEX``)."""

    def keys(obj: JSON) -> list[ObjectKey]:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        out: list[ObjectKey] = []
        for found in cache.by_index(config, SECRET_INDEX, f"{namespace}/{meta.get('name', '')}"):
            name = (found.get("metadata") or {}).get("name", "")
            out += [ObjectKey.of(o) for o in cache.by_index(resource, ref_index, f"{namespace}/{name}")]
        return out

    return Watch(SECRET, keys)


def telemetry_secret_refs(spec: JSON) -> list[tuple[str, str, str]]:
    """``(field, secret, key)`` of every Secret key an MCPTelemetryConfig spec (raw dict) names."""
    otel = spec.get("openTelemetry")
    headers = otel.get("sensitiveHeaders") if isinstance(otel, dict) else None
    refs = []
    for index, header in enumerate(headers if isinstance(headers, list) else []):
        ref = header.get("secretKeyRef") if isinstance(header, dict) else None
        if isinstance(ref, dict) and _ref_name(ref):
            field_path = f"spec.openTelemetry.sensitiveHeaders[{index}].secretKeyRef"
            refs.append((field_path, str(ref["name"]), str(ref.get("key", ""))))
    return refs


def index_telemetry_secrets(obj: JSON) -> list[str]:
    """Index MCPTelemetryConfigs by the Secrets they name (``SECRET_INDEX`` on that kind)."""
    return _keyed(obj, [name for _, name, _ in telemetry_secret_refs(_spec(obj))])


# -- EmbeddingServer: the embedding service a VirtualMCPServer's optimizer uses -----------------------------


def index_embedding_server(obj: JSON) -> list[str]:
    """The EmbeddingServer a VirtualMCPServer names in ``spec.embeddingServerRef``."""
    return _keyed(obj, [_ref_name(_spec(obj).get("embeddingServerRef"))])


def resolve_embedding_server(cache: Cache, namespace: str, name: str, missing: list[Missing]) -> str | None:
    """The URL of EmbeddingServer ``name`` once it is Ready (phase Ready, a ready pod and a URL), as
    ToolHive waits for it; else None, with why in ``missing`` (the field ``spec.embeddingServerRef.name``)."""
    field_path = "spec.embeddingServerRef"
    raw = cache.get(EMBEDDINGSERVER, namespace, name)
    if raw is None:
        missing.append(not_found(field_path, "EmbeddingServer", name, namespace, "EmbeddingServerNotFound"))
        return None
    status = raw.get("status") or {}
    url = status.get("url")
    if status.get("phase") == "Ready" and int(status.get("readyReplicas") or 0) > 0 and isinstance(url, str):
        return url
    state = f"is {status.get('phase') or 'Pending'}" + (
        f" ({status['message']})" if status.get("message") else ""
    )
    missing.append(
        Missing(
            f"{field_path}.name",
            "EmbeddingServerNotReady",
            f"EmbeddingServer '{name}' {state}; the gateway is deployed with the optimizer once it is Ready",
        )
    )
    return None
