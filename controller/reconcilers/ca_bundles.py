"""CA bundles read from ConfigMaps: an MCPServerEntry's ``caBundleRef`` (copied into the gateway's config)
and the inline OIDC ``caBundleRef`` of a proxy or gateway (mounted into its pod, which verifies the
issuer with it).

A bundle that is missing, or holds no valid certificate, blocks what uses it (a ``Missing`` entry naming
the field): trusting other CAs than the ones asked for is never the fallback. The workloads index the
ConfigMap they read, inline or through their MCPOIDCConfig, so creating or editing it reconciles them;
the digest of the certificates is a pod-template annotation, so a change rolls the pods.
"""

from __future__ import annotations

from api.auth_config import ca_bundle_context
from api.common import CABundleSource, OIDCConfig
from controller.core import CONFIGMAP, Cache, ObjectKey, Resource, Watch
from controller.reconcilers.children import JSON, config_hash
from controller.reconcilers.kinds import MCPOIDCCONFIG
from controller.reconcilers.oidc_refs import ResolvedOIDC
from controller.reconcilers.refs import OIDC_CONFIG_INDEX, Missing, config_map_value
from controller.reconcilers.render import oidc_ca_bundle_ref

OIDC_CA_BUNDLE_INDEX = "ref:oidcCABundle"
"""Proxies (inline) and MCPOIDCConfigs by the ConfigMap of their OIDC ``caBundleRef``."""
OIDC_CA_BUNDLE_ANNOTATION = "mcp-operator.dev/oidc-ca-bundle-hash"
"""Pod-template annotation: the digest of the mounted CA certificates (the proxy reads them at start)."""


def read_ca_bundle(
    cache: Cache, namespace: str, ref: CABundleSource, field: str, missing: list[Missing]
) -> str | None:
    """The PEM certificates of ``ref``; a missing ConfigMap or key, or a value without a valid certificate,
    is added to ``missing`` (``field``: the path of the ConfigMap's name)."""
    name, key = ref.config_map_ref.name, ref.config_map_ref.key
    text, what = config_map_value(cache, namespace, name, key)
    if text is None:
        missing.append(Missing(field, "CABundleNotFound", f"{what}; create it (the CA certificates, PEM)"))
        return None
    try:
        ca_bundle_context(text)
    except ValueError as exc:
        missing.append(Missing(field, "CABundleInvalid", f"ConfigMap '{name}' key '{key}': {exc}; fix it"))
        return None
    return text


def oidc_ca_bundle_digest(
    cache: Cache,
    namespace: str,
    inline: OIDCConfig | None,
    resolved: ResolvedOIDC | None,
    missing: list[Missing],
    *,
    prefix: str = "spec",
) -> str | None:
    """The digest of the CA certificates a workload's OIDC provider names (``inline``: its ``oidcConfig``,
    or the ``resolved`` MCPOIDCConfig of its ``oidcConfigRef``; both below ``prefix``), None without a
    bundle; a problem with it is added to ``missing``, which blocks the workload."""
    if resolved is not None:
        ref, field = oidc_ca_bundle_ref(resolved.oidc), f"{prefix}.oidcConfigRef.name"
        label = f"MCPOIDCConfig '{resolved.config.metadata.name}' spec.inline.caBundleRef"
    else:
        ref, field = oidc_ca_bundle_ref(inline), f"{prefix}.oidcConfig.inline.caBundleRef.configMapRef.name"
        label = f"{prefix}.oidcConfig.inline.caBundleRef"
    if ref is None:
        return None
    found: list[Missing] = []
    pem = read_ca_bundle(cache, namespace, ref, field, found)
    missing += [Missing(m.field, m.reason, f"{label}: {m.message}") for m in found]
    return None if pem is None else config_hash(pem)


def with_ca_bundle_digest(objects: list[JSON], digest: str | None) -> list[JSON]:
    """``objects`` with the bundle's ``digest`` on the pod template of their Deployment (a change rolls)."""
    if digest is None:
        return objects
    for obj in objects:
        if obj.get("kind") == "Deployment":
            metadata = obj["spec"]["template"].setdefault("metadata", {})
            metadata["annotations"] = {
                **(metadata.get("annotations") or {}),
                OIDC_CA_BUNDLE_ANNOTATION: digest,
            }
    return objects


def index_oidc_ca_bundle(obj: JSON) -> list[str]:
    """``namespace/name`` of the ConfigMap the OIDC ``caBundleRef`` of ``obj`` names: an MCPServer's or
    MCPRemoteProxy's ``spec.oidcConfig.inline``, a VirtualMCPServer's ``spec.incomingAuth.oidcConfig
    .inline``, an MCPOIDCConfig's ``spec.inline``."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    incoming = spec.get("incomingAuth")
    oidc = incoming.get("oidcConfig") if isinstance(incoming, dict) else spec.get("oidcConfig")
    inline = oidc.get("inline") if isinstance(oidc, dict) else spec.get("inline")
    bundle = inline.get("caBundleRef") if isinstance(inline, dict) else None
    ref = bundle.get("configMapRef") if isinstance(bundle, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    return [f"{namespace}/{name}"] if isinstance(name, str) and name else []


def oidc_ca_bundle_watch(cache: Cache, resource: Resource) -> Watch:
    """ConfigMap events enqueue the ``resource`` workloads whose OIDC provider (inline, or their
    MCPOIDCConfig) reads that ConfigMap."""
    cache.add_index(resource, OIDC_CA_BUNDLE_INDEX, index_oidc_ca_bundle)
    cache.add_index(MCPOIDCCONFIG, OIDC_CA_BUNDLE_INDEX, index_oidc_ca_bundle)

    def keys(config_map: JSON) -> list[ObjectKey]:
        meta = config_map.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        value = f"{namespace}/{meta.get('name', '')}"
        found = [ObjectKey.of(o) for o in cache.by_index(resource, OIDC_CA_BUNDLE_INDEX, value)]
        for config in cache.by_index(MCPOIDCCONFIG, OIDC_CA_BUNDLE_INDEX, value):
            name = (config.get("metadata") or {}).get("name", "")
            found += [
                ObjectKey.of(o) for o in cache.by_index(resource, OIDC_CONFIG_INDEX, f"{namespace}/{name}")
            ]
        return found

    return Watch(CONFIGMAP, keys)
