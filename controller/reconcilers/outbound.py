"""A proxy's outbound credentials: the referenced MCPExternalAuthConfig, checked before it is rendered.

Shared by the MCPServer reconciler (HTTP transports: the proxy authenticates to the server) and the
MCPRemoteProxy reconciler (the proxy authenticates to the remote server). Every problem becomes a
:class:`~controller.reconcilers.refs.Missing` entry, so the workload reports ``ResolvedRefs=False`` with a
message that names the field and the fix, and keeps its running children until the reference is usable.
"""

from __future__ import annotations

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.problems import format_problems
from controller.core import Cache
from controller.reconcilers.mcpexternalauthconfig import render_problems
from controller.reconcilers.refs import Missing, Resolved, missing_auth_secrets, parse_ref

FIELD = "spec.externalAuthConfigRef.name"
AUTH_SERVER_FIELD = "spec.authServerRef.name"


def resolve_external_auth(
    cache: Cache, namespace: str, resolved: Resolved, *, inbound_auth: bool, missing: list[Missing]
) -> MCPExternalAuthConfig | None:
    """The usable MCPExternalAuthConfig of a workload, or None (absent or unusable: see ``missing``).

    ``inbound_auth`` says whether callers authenticate (``spec.oidcConfig``): a token exchange needs a
    caller's token to exchange.
    """
    external_auth = parse_ref(MCPExternalAuthConfig, resolved.external_auth, FIELD, missing)
    if external_auth is None:
        return None
    if external_auth.spec.type == "tokenExchange" and not inbound_auth:
        missing.append(
            Missing(
                "spec.oidcConfig",
                "InboundAuthRequired",
                f"MCPExternalAuthConfig '{external_auth.metadata.name}' is of type tokenExchange, which "
                "exchanges each caller's token: set spec.oidcConfig so that callers authenticate, or use "
                "another auth type",
            )
        )
        return None
    problems = render_problems(external_auth)
    if problems:
        missing.append(invalid_auth(external_auth, format_problems(problems)))
        return None
    auth_spec = (resolved.external_auth or {}).get("spec") or {}
    missing += missing_auth_secrets(cache, namespace, external_auth.metadata.name or "", auth_spec)
    return external_auth


def invalid_auth(external_auth: MCPExternalAuthConfig | None, detail: str) -> Missing:
    """The reference is resolved but the proxy cannot use it (``detail``: the first line is kept)."""
    name = external_auth.metadata.name if external_auth is not None else ""
    first = detail.splitlines()[0] if detail else detail
    return Missing(
        FIELD,
        "ExternalAuthConfigInvalid",
        f"MCPExternalAuthConfig '{name}' cannot be used by the proxy: {first}",
    )


def resolve_auth_server(
    cache: Cache, namespace: str, resolved: Resolved, *, inbound_auth: bool, missing: list[Missing]
) -> MCPExternalAuthConfig | None:
    """The usable ``embeddedAuthServer`` config of ``spec.authServerRef``, or None (absent or unusable:
    see ``missing``). ``inbound_auth``: the workload also sets ``oidcConfig`` / ``oidcConfigRef``, which
    the embedded server replaces."""
    config = parse_ref(MCPExternalAuthConfig, resolved.auth_server, AUTH_SERVER_FIELD, missing)
    if config is None:
        return None
    name = config.metadata.name
    if config.spec.type != "embeddedAuthServer":
        missing.append(
            Missing(
                AUTH_SERVER_FIELD,
                "AuthServerConfigInvalid",
                f"MCPExternalAuthConfig '{name}' is of type {config.spec.type}; spec.authServerRef needs "
                "type embeddedAuthServer (name a backend credential with spec.externalAuthConfigRef)",
            )
        )
        return None
    if inbound_auth:
        missing.append(
            Missing(
                "spec.oidcConfigRef",
                "AuthServerConflict",
                f"the embedded authorization server of MCPExternalAuthConfig '{name}' authenticates callers "
                "itself: remove spec.oidcConfig / spec.oidcConfigRef, or spec.authServerRef",
            )
        )
        return None
    problems = render_problems(config)
    if problems:
        first = format_problems(problems).splitlines()[0]
        missing.append(
            Missing(AUTH_SERVER_FIELD, "AuthServerConfigInvalid", f"MCPExternalAuthConfig '{name}': {first}")
        )
        return None
    auth_spec = (resolved.auth_server or {}).get("spec") or {}
    missing += missing_auth_secrets(cache, namespace, name or "", auth_spec)
    return config
