"""Small pure checks shared by the per-kind rules: URLs, quantities, OIDC, resources, header names."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from api.auth_config import HEADER_NAME, RESERVED_HEADERS, is_loopback_host, passthrough_refusal
from api.common import (
    InlineOIDCSharedConfig,
    KubernetesServiceAccountOIDCConfig,
    OIDCConfig,
    ResourceRequirements,
)
from api.mcpserverentry import CABundleSource
from api.problems import Problem

__all__ = [
    "ALWAYS_REFUSED",
    "CREDENTIAL_HEADERS",
    "HEADER_NAME",
    "RESERVED_HEADERS",
    "address_class",
    "check_oidc",
    "check_oidc_provider",
    "check_resource_url",
    "check_resources",
    "is_loopback_host",
    "parse_quantity",
    "passthrough_header_problems",
    "plain_header_problems",
    "remote_url_problems",
]

_CLOUD_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "169.254.169.254"})
_CLUSTER_HOST_SUFFIXES = (".cluster.local", ".svc")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
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
        except (ValueError, ArithmeticError):  # decimal.Overflow for an exponent such as 1e999999999
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


def check_oidc(oidc: OIDCConfig | None, field: str) -> list[Problem]:
    """The block of the chosen type is present (and only it) and its URLs are https (unless explicitly
    allowed)."""
    if oidc is None:
        return []
    problems = check_oidc_blocks(oidc.type, oidc.inline, oidc.kubernetes_service_account, field)
    if problems:
        return problems
    if oidc.inline is not None:
        problems = check_oidc_provider(oidc.inline, f"{field}.inline")
    if oidc.kubernetes_service_account is not None:
        problems = check_service_account_oidc(
            oidc.kubernetes_service_account, f"{field}.kubernetesServiceAccount"
        )
    if oidc.resource_url is not None:
        problems += _url_problems(f"{field}.resourceUrl", oidc.resource_url, fetched=False, allow_http=True)
    return problems


def check_oidc_blocks(
    type_: str, inline: object | None, service_account: object | None, field: str
) -> list[Problem]:
    """The block ``type_`` names is set and the other one is not (ToolHive's rule, so neither is ignored)."""
    if type_ == "kubernetesServiceAccount":
        if service_account is None:
            return [
                Problem(
                    f"{field}.kubernetesServiceAccount",
                    "type is kubernetesServiceAccount; set kubernetesServiceAccount ({} for the defaults)",
                )
            ]
        if inline is not None:
            return [Problem(f"{field}.inline", "is only for type inline; remove it")]
        return []
    if inline is None:
        return [Problem(f"{field}.inline", "type is inline; set inline.issuer")]
    if service_account is not None:
        return [
            Problem(
                f"{field}.kubernetesServiceAccount", "is only for type kubernetesServiceAccount; remove it"
            )
        ]
    return []


def check_service_account_oidc(block: KubernetesServiceAccountOIDCConfig, field: str) -> list[Problem]:
    """The cluster issuer's URLs are valid https URLs; ``introspectionUrl`` is refused (not implemented)."""
    problems = []
    for name, url in (("issuer", block.issuer), ("jwksUrl", block.jwks_url)):
        if url is not None:
            problems += _url_problems(f"{field}.{name}", url, fetched=True, allow_http=False)
    if block.introspection_url is not None:
        problems.append(
            Problem(
                f"{field}.introspectionUrl",
                "is not supported (service account tokens are JWTs, validated with the issuer's JWKS); "
                "remove it",
            )
        )
    return problems


def check_oidc_provider(provider: InlineOIDCSharedConfig, field: str) -> list[Problem]:
    """An identity provider's URLs are valid, carry no credentials and are https (unless allowed);
    ``field`` is the path of the block (``spec.oidcConfig.inline``, ``spec.inline``)."""
    problems = []
    allow_http = provider.insecure_allow_http
    for name, url in (("issuer", provider.issuer), ("jwksUrl", provider.jwks_url)):
        if url is not None:
            problems += _url_problems(f"{field}.{name}", url, fetched=True, allow_http=allow_http)
    if provider.client_secret_ref is not None and not provider.client_id:
        problems.append(Problem(f"{field}.clientId", "clientSecretRef is set without clientId; set clientId"))
    problems += ca_bundle_problems(provider.ca_bundle_ref, provider.issuer, f"{field}.caBundleRef", "issuer")
    if provider.jwks_auth_token_path is not None:
        problems += _pod_file_problems(provider.jwks_auth_token_path, f"{field}.jwksAuthTokenPath")
    return problems


def _pod_file_problems(path: str, field: str) -> list[Problem]:
    """A file the proxy reads in its own pod: an absolute, normalised path (the pod's working directory
    is not the user's to know, and ``..`` would hide where it points)."""
    if not path.startswith("/") or path == "/" or "\0" in path or posixpath.normpath(path) != path:
        return [
            Problem(
                field,
                f"{path!r} is not an absolute path to a file; write e.g. "
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            )
        ]
    return []


def check_resource_url(url: str | None, field: str) -> list[Problem]:
    """An RFC 9728 ``resource`` URL: published to clients, never fetched (http allowed)."""
    return [] if url is None else _url_problems(field, url, fetched=False, allow_http=True)


def _url_problems(path: str, url: str, *, fetched: bool, allow_http: bool) -> list[Problem]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return [Problem(path, f"{url!r} is not a valid URL ({exc}); write e.g. https://idp.example.com")]
    problems = []
    if parts.username or parts.password:
        problems.append(Problem(path, "must not carry credentials; remove user:password@"))
    if fetched and parts.scheme == "http" and not allow_http and not is_loopback_host(parts.hostname or ""):
        problems.append(
            Problem(path, f"{url!r} is not https; use https, or set inline.insecureAllowHTTP: true for tests")
        )
    return problems


_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_DNS_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def address_class(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an IP address is not a public endpoint, or None when it is.

    ``"never"`` classes (loopback excluded) are refused even with ``allowPrivateEndpoint``: link-local
    (including the cloud metadata address 169.254.169.254 and fe80::/10), unspecified, multicast and
    reserved. ``"loopback"`` and ``"private"`` (RFC 1918, RFC 6598, fc00::/7, ...) are opt-in. An IPv4
    address mapped or embedded in IPv6 (``::ffff:10.0.0.1``, 6to4, NAT64 well-known prefix) is judged as
    the IPv4 address it carries.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_class(embedded)
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_private or (
        isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE
    ):
        return "private"
    if address.is_reserved:
        return "reserved"
    return None


#: Address classes refused even with allowPrivateEndpoint.
ALWAYS_REFUSED = frozenset({"link-local", "unspecified", "multicast", "reserved"})


def remote_url_problems(url: str, field: str, *, allow_private: bool) -> list[Problem]:
    """What is wrong with a remote MCP URL (no DNS lookup: only what the URL itself says).

    Refused always: a scheme other than http(s), a missing or malformed host, credentials in the URL,
    loopback, cloud metadata, the API server, link-local, unspecified, multicast and reserved addresses.
    Refused unless ``allow_private``: private addresses (IPv4 and IPv6) and in-cluster names.
    """
    example = "write e.g. https://mcp.example.com/mcp"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return [Problem(field, f"{url!r} is not a valid URL ({exc}); {example}")]
    if parts.scheme not in ("http", "https"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return [Problem(field, f"{url!r} has {scheme}; only http and https are supported, {example}")]
    if not host:
        return [Problem(field, f"{url!r} has no host; {example}")]
    if parts.username is not None or parts.password is not None:
        return [
            Problem(
                field,
                "must not carry credentials (user:password@); put them in a Secret and use "
                "headerForward.addHeadersFromSecret or externalAuthConfigRef",
            )
        ]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None and not _DNS_HOST.match(host):
        return [Problem(field, f"host {host!r} is neither a DNS name nor an IP address; {example}")]
    kind = address_class(address) if address is not None else None
    if host in _CLOUD_METADATA_HOSTS:
        return [Problem(field, f"host {host!r} is the cloud metadata service and is always refused")]
    if host.startswith("kubernetes.default"):
        return [Problem(field, f"host {host!r} is the Kubernetes API server and is always refused")]
    if is_loopback_host(host) or kind == "loopback":
        return [Problem(field, f"host {host!r} is loopback (the proxy pod itself) and is always refused")]
    if kind in ALWAYS_REFUSED:
        return [Problem(field, f"address {host} is {kind} and is always refused; use a public address")]
    private = kind == "private" or host.endswith(_CLUSTER_HOST_SUFFIXES)
    if private and not allow_private:
        return [
            Problem(
                field,
                f"host {host!r} is private or in-cluster; set allowPrivateEndpoint: true to allow it",
            )
        ]
    return []


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 field values: no CTL but HTAB
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
"""Headers whose value is a credential: never accepted in plain text (it would land in a ConfigMap)."""


def plain_header_problems(headers: Mapping[str, str], field: str, credential_fix: str) -> list[Problem]:
    """Headers written in plain text (``field[name]``): valid names the data plane does not set itself,
    no credential (``credential_fix`` says where it goes instead), values on one line."""
    problems = []
    for name, value in headers.items():
        where = f"{field}[{name}]"
        bad = header_name_problem(name, where)
        if bad is not None:
            problems.append(bad)
        elif name.lower() in CREDENTIAL_HEADERS:
            problems.append(Problem(where, f"{name} carries a credential; {credential_fix}"))
        elif _CONTROL.search(value):
            problems.append(
                Problem(where, "the value has a line break or control character; write it on one line")
            )
    return problems


def header_name_problem(name: str, field: str) -> Problem | None:
    """A header name that is not an RFC 9110 token or that the proxy computes itself."""
    if not HEADER_NAME.match(name):
        return Problem(field, f"{name!r} is not a valid HTTP header name; use letters, digits and '-'")
    if name.lower() in RESERVED_HEADERS:
        return Problem(
            field, f"header {name!r} is set by the proxy itself and cannot be configured; remove it"
        )
    return None


def passthrough_header_problems(names: list[str] | None, field: str) -> list[Problem]:
    """``passthroughHeaders``: client header names forwarded to every backend (``field[i]``), each once,
    none refused by :func:`api.auth_config.passthrough_refusal` (fail closed: no credential forwarded)."""
    problems = []
    seen: set[str] = set()
    for i, name in enumerate(names or []):
        reason = passthrough_refusal(name)
        if reason is None and name.lower() in seen:
            reason = f"{name!r} is listed twice; keep only one"
        if reason is not None:
            problems.append(Problem(f"{field}[{i}]", reason))
        seen.add(name.lower())
    return problems


def ca_bundle_problems(
    ref: CABundleSource | None, remote_url: str, field: str, url_name: str = "remoteUrl"
) -> list[Problem]:
    """A CA bundle verifies an https URL and is never optional (a missing one must not change what is
    trusted)."""
    if ref is None:
        return []
    problems = []
    if ref.config_map_ref.optional:
        problems.append(
            Problem(
                f"{field}.configMapRef.optional",
                "must not be true: a missing bundle would change which certificates are trusted; remove it",
            )
        )
    if not remote_url.startswith("https://"):
        problems.append(Problem(field, f"verifies TLS: the {url_name} must be https://"))
    return problems
