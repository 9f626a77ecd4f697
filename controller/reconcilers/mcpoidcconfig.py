"""The MCPOIDCConfig controller: validity, ``configHash``, the referencing workloads and deletion protection
(:mod:`controller.reconcilers.referenced_config`, through the ``ref:oidcConfig`` index; the workloads copy
the hash into ``status.oidcConfigHash`` and re-render when the config changes, through the same index),
plus ``ResolvedRefs``: the client Secret and the CA bundle ConfigMap it names exist.
"""

from __future__ import annotations

from api.common import CABundleSource
from api.conditions import RESOLVED_REFS
from api.mcpoidcconfig import MCPOIDCConfig
from api.resource import CustomResource
from controller.core import CONFIGMAP, SECRET, Cache, Controller, ReconcileContext, Watch
from controller.core.manager import Manager
from controller.reconcilers.ca_bundles import OIDC_CA_BUNDLE_INDEX, index_oidc_ca_bundle, read_ca_bundle
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPOIDCCONFIG
from controller.reconcilers.referenced_config import ReferencedKind, referenced_controller
from controller.reconcilers.refs import (
    OIDC_CONFIG_INDEX,
    SECRET_INDEX,
    Missing,
    index_oidc_config,
    index_oidc_config_secrets,
    index_watch,
    missing_config_secrets,
    oidc_config_secret_refs,
    secret_to_configs,
    strip_secret_values,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder


def _valid(parsed: CustomResource) -> str:
    kind = parsed.spec.type if isinstance(parsed, MCPOIDCConfig) else ""
    return f"the {kind} OIDC configuration is valid"


async def _resolve_secrets(ctx: ReconcileContext, raw: JSON, builder: StatusBuilder, valid: bool) -> None:
    """``ResolvedRefs``: whether the Secrets and the CA bundle a valid config names exist (removed while
    it is invalid)."""
    meta = raw.get("metadata") or {}
    if not valid:
        builder.remove(RESOLVED_REFS)
        return
    namespace, label = str(meta.get("namespace") or ""), f"MCPOIDCConfig '{meta.get('name')}'"
    spec = raw.get("spec") or {}
    absent = missing_config_secrets(ctx.cache, namespace, label, oidc_config_secret_refs(spec))
    bundle = (spec.get("inline") or {}).get("caBundleRef")
    if bundle is not None:  # the config is valid: the reference parses
        found: list[Missing] = []
        ref = CABundleSource.model_validate(bundle)
        read_ca_bundle(ctx.cache, namespace, ref, "spec.inline.caBundleRef.configMapRef.name", found)
        absent += [Missing(m.field, m.reason, f"spec.inline.caBundleRef: {m.message}") for m in found]
    if absent:
        builder.set(RESOLVED_REFS, False, absent[0].reason, "; ".join(m.message for m in absent))
    else:
        what = "every referenced Secret exists" + (" and the CA bundle is valid" if bundle else "")
        builder.set(RESOLVED_REFS, True, "ResolvedRefs", what, event=False)


def _secret_watches(cache: Cache) -> list[Watch]:
    """Secret and ConfigMap (CA bundle) events enqueue the configs that name them."""
    cache.add_index(MCPOIDCCONFIG, SECRET_INDEX, index_oidc_config_secrets)
    cache.add_index(MCPOIDCCONFIG, OIDC_CA_BUNDLE_INDEX, index_oidc_ca_bundle)
    cache.set_transform(SECRET, strip_secret_values)
    return [
        secret_to_configs(cache, MCPOIDCCONFIG),
        index_watch(cache, CONFIGMAP, MCPOIDCCONFIG, OIDC_CA_BUNDLE_INDEX),
    ]


OIDC_CONFIG = ReferencedKind(
    name="mcpoidcconfig",
    resource=MCPOIDCCONFIG,
    model=MCPOIDCConfig,
    reference="oidcConfigRef",
    index=OIDC_CONFIG_INDEX,
    index_func=index_oidc_config,
    valid=_valid,
    resolve=_resolve_secrets,
    watches=_secret_watches,
)


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPOIDCConfig controller (``settings`` unused: it renders nothing)."""
    return referenced_controller(OIDC_CONFIG, manager)
