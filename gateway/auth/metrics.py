"""Prometheus metrics of the auth layer (registered once, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["INBOUND_DECISIONS", "JWKS_FETCHES", "OUTBOUND_TOKEN_REQUESTS"]

INBOUND_DECISIONS = Counter(
    "mcp_auth_inbound_decisions",
    "Inbound authentication decisions by outcome "
    "(allowed, missing_token, invalid_token, insufficient_scope, unavailable).",
    ["outcome"],
)
JWKS_FETCHES = Counter(
    "mcp_auth_jwks_fetches",
    "JWKS (and OIDC discovery) fetches from the issuer by result (ok, error).",
    ["result"],
)
OUTBOUND_TOKEN_REQUESTS = Counter(
    "mcp_auth_outbound_token_requests",
    "Requests to upstream token endpoints by credential type and result (ok, error).",
    ["type", "result"],
)
