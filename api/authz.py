"""``authzConfig``: Cedar authorization of a workload, with ToolHive's field names (MCPServer and
MCPRemoteProxy ``spec.authzConfig``, VirtualMCPServer ``spec.incomingAuth.authzConfig``).

The policies are checked when the object is read (:func:`authz_problems`: a policy that does not parse
or names an unknown entity type, or a ``forbid`` naming an unknown action, gives ``Accepted=False`` naming
the policy and the line; a ``permit`` naming an unknown action, accepted as ToolHive accepts it, never
matches and is reported by :func:`authz_notices`) and
rendered into the proxy's or gateway's config file (:func:`cedar_config`). How they are enforced:
docs/auth.md ("Authorization").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from api.authz_config import ENTITY_TYPE_PATTERN, CedarConfig, PolicyError, compile_policies
from api.base import CRDModel, ResourceName
from api.problems import Problem

__all__ = [
    "AuthzConfigRef",
    "ConfigMapAuthzRef",
    "InlineAuthzConfig",
    "authz_config_notices",
    "authz_config_problems",
    "authz_notices",
    "authz_problems",
    "cedar_config",
    "config_map_cedar_config",
    "shared_cedar_config",
]

_OPTIONS = ("policies", "entities_json", "group_claim_name", "role_claim_name", "group_entity_type")
"""MCPAuthzConfig ``spec.config`` keys (ToolHive's snake_case Cedar options) that this API implements."""


class InlineAuthzConfig(CRDModel):
    """Cedar policies written in the object."""

    policies: list[str] = Field(min_length=1)
    """Cedar policies; a request no ``permit`` matches is denied, and a ``forbid`` always wins."""
    entities_json: str = "[]"
    """Static Cedar entities (JSON), e.g. the parents of groups for transitive ``in`` checks."""
    primary_upstream_provider: str | None = None
    """Not supported: the claims are always the inbound token's (ToolHive: an upstream IDP's token)."""


class ConfigMapAuthzRef(CRDModel):
    """A ConfigMap holding the authorization configuration (ToolHive's ``authz.json`` format)."""

    name: ResourceName
    """Name of the ConfigMap."""
    key: str = "authz.json"
    """Key of the ConfigMap holding the configuration."""


class AuthzConfigRef(CRDModel):
    """Cedar authorization of the workload's MCP requests: which principal may call which tool, get which
    prompt, read which resource; lists show only what the principal may use."""

    type: Literal["configMap", "inline"] = "configMap"
    """Where the policies are: ``inline`` (in ``inline``) or ``configMap`` (a key of a ConfigMap, in
    ToolHive's authorization file format; a change of the ConfigMap re-renders the workload)."""
    config_map: ConfigMapAuthzRef | None = None
    """The ConfigMap with the policies (``type: configMap``)."""
    inline: InlineAuthzConfig | None = None
    """The policies (``type: inline``)."""
    group_claim_name: str | None = Field(default=None, max_length=253)
    """The JWT claim listing the principal's groups; default: ``groups``, ``roles`` or
    ``cognito:groups``, the first present."""
    role_claim_name: str | None = Field(default=None, max_length=253)
    """A JWT claim whose values are groups too."""
    group_entity_type: str | None = Field(default=None, max_length=63, pattern=ENTITY_TYPE_PATTERN)
    """The Cedar entity type of groups; default ``THVGroup``."""


def cedar_config(ref: AuthzConfigRef) -> CedarConfig | None:
    """What the proxy or gateway enforces for ``ref`` (None: nothing to render, see the rules)."""
    if ref.type != "inline" or ref.inline is None:
        return None
    inline = ref.inline
    options: dict[str, object] = {"policies": tuple(inline.policies), "entities_json": inline.entities_json}
    if ref.group_claim_name:
        options["group_claim_name"] = ref.group_claim_name
    if ref.role_claim_name:
        options["role_claim_name"] = ref.role_claim_name
    if ref.group_entity_type:
        options["group_entity_type"] = ref.group_entity_type
    return CedarConfig.model_validate(options)


def shared_cedar_config(config: Mapping[str, Any]) -> CedarConfig:
    """An MCPAuthzConfig's ``spec.config`` as the data plane's settings; raises ValueError."""
    unknown = sorted(set(config) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"{unknown[0]} is not supported (supported: {', '.join(_OPTIONS)})")
    options = {key: value for key, value in config.items() if value not in (None, "")}
    if isinstance(options.get("policies"), list):
        options["policies"] = tuple(options["policies"])
    return CedarConfig.model_validate(options)


def config_map_cedar_config(text: str, ref: AuthzConfigRef) -> CedarConfig:
    """The policies of a ConfigMap key in ToolHive's authorization file format (JSON or YAML:
    ``{"version": "1.0", "type": "cedarv1", "cedar": {"policies": [...], "entities_json": "[]"}}``),
    with the group settings of ``ref`` over the file's; raises ValueError (PolicyError when a policy does
    not compile) naming what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not JSON or YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cedar"), dict):
        raise ValueError('holds no "cedar" object (ToolHive\'s format: {"type": "cedarv1", "cedar": {...}})')
    if data.get("type", "cedarv1") != "cedarv1":
        raise ValueError(f"type {data.get('type')!r} is not supported (only cedarv1)")
    options = dict(data["cedar"])
    for key, value in (
        ("group_claim_name", ref.group_claim_name),
        ("role_claim_name", ref.role_claim_name),
        ("group_entity_type", ref.group_entity_type),
    ):
        if value:
            options[key] = value
    try:
        config = shared_cedar_config(options)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from exc
    compile_policies(config)
    return config


def authz_config_problems(config: Mapping[str, Any], field: str) -> list[Problem]:
    """What keeps an MCPAuthzConfig's ``spec.config`` (at ``field``) from being enforced as written."""
    try:
        cedar = shared_cedar_config(config)
    except ValidationError as exc:
        return [Problem(f"{field}.{'.'.join(map(str, e['loc']))}", e["msg"]) for e in exc.errors()]
    except ValueError as exc:
        key = str(exc).split(" ", 1)[0]
        return [Problem(f"{field}.{key}", str(exc).split(" ", 1)[1])]
    return _compile_problems(cedar, field, "")


def _compile_problems(config: CedarConfig, field: str, inline: str) -> list[Problem]:
    """The policy set's compile error, if any, at the field of the policy (``policies[i]``) or the
    static entities (``entitiesJson``, ``entities_json`` in an MCPAuthzConfig)."""
    try:
        compile_policies(config)
    except PolicyError as exc:
        message = str(exc)
        if message.startswith("policies["):
            where, _, what = message.partition(" ")
            return [Problem(f"{field}.{inline}{where.rstrip(':')}", what)]
        entities = "entitiesJson" if inline else "entities_json"
        return [Problem(f"{field}.{inline}{entities}", message.removeprefix("entitiesJson: "))]
    return []


def authz_problems(ref: AuthzConfigRef | None, field: str, *, shared: bool = False) -> list[Problem]:
    """What keeps ``ref`` (at ``field``) from being enforced as written (``shared``: an
    ``authzConfigRef`` is set next to it)."""
    if ref is None:
        return []
    if shared:
        return [Problem(field, "authzConfig and authzConfigRef are mutually exclusive; keep one")]
    if ref.type == "configMap":
        if ref.config_map is None:
            return [Problem(f"{field}.configMap", "type is configMap; set configMap.name (and key)")]
        return []  # its content is checked when the ConfigMap is read
    if ref.inline is None:
        return [Problem(f"{field}.inline", "type is inline; set inline.policies (Cedar policy texts)")]
    if ref.inline.primary_upstream_provider:
        return [
            Problem(
                f"{field}.inline.primaryUpstreamProvider",
                "is not supported yet (policies see the inbound token's claims); remove it",
            )
        ]
    config = cedar_config(ref)
    assert config is not None
    return _compile_problems(config, field, "inline.")


@functools.lru_cache(maxsize=256)
def _never_matching_of(config: CedarConfig) -> tuple[str, ...]:
    """Cached: a reconcile reads the notices of a policy set that changes only with its spec."""
    try:
        return compile_policies(config).never_matching
    except PolicyError:
        return ()  # a problem, reported by the rules


def _never_matching(config: CedarConfig, field: str, inline: str) -> list[Problem]:
    """What in a policy set that compiles can never match, at the field of its policy."""
    notices = []
    for notice in _never_matching_of(config):
        where, _, what = notice.partition(" ")
        notices.append(Problem(f"{field}.{inline}{where}", what))
    return notices


def authz_notices(ref: AuthzConfigRef | None, field: str) -> list[Problem]:
    """What in ``ref``'s inline policies (at ``field``) is valid but can never match (a warning)."""
    config = cedar_config(ref) if ref is not None and ref.inline is not None else None
    return [] if config is None else _never_matching(config, field, "inline.")


def authz_config_notices(config: Mapping[str, Any], field: str) -> list[Problem]:
    """The same for an MCPAuthzConfig's ``spec.config`` (at ``field``)."""
    try:
        cedar = shared_cedar_config(config)
    except ValueError:  # ValidationError too: a problem, reported by the rules
        return []
    return _never_matching(cedar, field, "")
