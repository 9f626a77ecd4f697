"""Small pure checks shared by the per-kind rules: URLs, quantities, OIDC, resources, header names."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from api.common import OIDCConfig, ResourceRequirements
from api.problems import Problem

__all__ = [
    "HEADER_NAME",
    "RESERVED_HEADERS",
    "check_oidc",
    "check_resources",
    "is_loopback_host",
    "parse_quantity",
    "remote_url_problems",
]

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,255}$")
#: Headers the proxy computes itself; configuring them would break framing or routing.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "mcp-session-id",
        "mcp-protocol-version",
    }
)
_CLOUD_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "169.254.169.254"})
_CLUSTER_HOST_SUFFIXES = (".cluster.local", ".svc")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity (``500m`` -> 0.5, ``1Gi`` -> 1073741824), or None if malformed."""
    match = _QUANTITY.match(text)
    if not match:
        return None
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return value * Decimal(10) ** int(suffix[1:])
        except ValueError:
            return None
    return None


def check_resources(resources: ResourceRequirements | None, field: str) -> list[Problem]:
    """Every quantity parses and no request exceeds its limit."""
    if resources is None:
        return []
    problems = []
    raw = {"limits": resources.limits or {}, "requests": resources.requests or {}}
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for part, values in raw.items():
        for name, text in values.items():
            value = parse_quantity(text)
            if value is None:
                problems.append(
                    Problem(
                        f"{field}.{part}.{name}", f"{text!r} is not a quantity; write e.g. 500m, 2 or 256Mi"
                    )
                )
            else:
                parsed[part][name] = value
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            problems.append(
                Problem(
                    f"{field}.requests.{name}",
                    f"request {raw['requests'][name]} exceeds the limit {raw['limits'][name]}; "
                    "lower the request or raise the limit",
                )
            )
    return problems


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_oidc(oidc: OIDCConfig | None, field: str) -> list[Problem]:
    """The inline block is present and its URLs are https (unless explicitly allowed)."""
    if oidc is None:
        return []
    if oidc.inline is None:
        return [
            Problem(f"{field}.inline", "type is inline but the inline block is missing; set inline.issuer")
        ]
    problems = []
    inline = oidc.inline
    for name, url in (("issuer", inline.issuer), ("jwksUrl", inline.jwks_url)):
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.username or parts.password:
            problems.append(
                Problem(f"{field}.inline.{name}", "must not carry credentials; remove user:password@")
            )
        if (
            parts.scheme == "http"
            and not inline.insecure_allow_http
            and not is_loopback_host(parts.hostname or "")
        ):
            problems.append(
                Problem(
                    f"{field}.inline.{name}",
                    f"{url!r} is not https; use https, or set inline.insecureAllowHTTP: true for tests",
                )
            )
    if inline.client_secret_ref is not None and not inline.client_id:
        problems.append(
            Problem(f"{field}.inline.clientId", "clientSecretRef is set without clientId; set clientId")
        )
    return problems


def remote_url_problems(url: str, field: str, *, allow_private: bool) -> list[Problem]:
    """What is wrong with a remote MCP URL (no DNS lookup: only what the URL itself says)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return [
            Problem(field, f"{url!r} is not an absolute http(s) URL; write e.g. https://mcp.example.com/mcp")
        ]
    if parts.username or parts.password:
        return [
            Problem(
                field,
                "must not carry credentials (user:password@); put them in a Secret and use "
                "headerForward.addHeadersFromSecret or externalAuthConfigRef",
            )
        ]
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return [Problem(field, f"{url!r} has an invalid port; use a number between 1 and 65535")]
    if is_loopback_host(host) or host in _CLOUD_METADATA_HOSTS or host.startswith("kubernetes.default"):
        return [
            Problem(
                field, f"host {host!r} is loopback, cloud metadata or the API server and is always refused"
            )
        ]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_link_local or address.is_unspecified or address.is_multicast):
        return [
            Problem(field, f"address {host} is link-local, unspecified or multicast and is always refused")
        ]
    private = (address is not None and address.is_private) or host.endswith(_CLUSTER_HOST_SUFFIXES)
    if private and not allow_private:
        return [
            Problem(
                field,
                f"host {host!r} is private or in-cluster; set allowPrivateEndpoint: true to allow it",
            )
        ]
    return []


def header_name_problem(name: str, field: str) -> Problem | None:
    """A header name that is not an RFC 9110 token or that the proxy computes itself."""
    if not HEADER_NAME.match(name):
        return Problem(field, f"{name!r} is not a valid HTTP header name; use letters, digits and '-'")
    if name.lower() in RESERVED_HEADERS:
        return Problem(
            field, f"header {name!r} is set by the proxy itself and cannot be configured; remove it"
        )
    return None
