"""SSRF guard: refuse to connect a backend whose host resolves to an address it must not reach.

A remote proxy is told to reach a URL on the internet. Without this guard, a DNS name that resolves to
``127.0.0.1``, ``10.x``, ``169.254.169.254`` (cloud metadata) or an IPv6 equivalent would make the proxy a
way into the cluster's own network. The operator already refuses such *literal* addresses in
``spec.remoteUrl`` (:func:`api.checks.remote_url_problems`); this module checks what the name *resolves to*
right before the proxy connects.

Policy (the same classes as the operator's, :func:`api.checks.address_class`):

- always refused: link-local (169.254.0.0/16 incl. cloud metadata, fe80::/10), unspecified (0.0.0.0, ::),
  multicast and reserved addresses;
- refused unless ``allow_private``: loopback and private ranges (RFC 1918, RFC 6598, fc00::/7, ...);
- IPv4 addresses mapped or embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, 64:ff9b::/96) are judged as IPv4;
- every resolved address must pass (a name with one public and one private address is refused).

The resolver is a seam: ``Resolver(host, port) -> list of address strings``; tests pass a fake one.
The check happens before each (re)connect, which narrows but does not close a DNS-rebinding window
(the HTTP client resolves the name again); network policies remain the hard boundary in a cluster.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from api.checks import ALWAYS_REFUSED, address_class

__all__ = ["EndpointRefusedError", "Resolver", "check_endpoint", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to IP address strings (IPv4 and IPv6)."""


class EndpointRefusedError(ConnectionRefusedError):
    """The backend URL's host is, or resolves to, an address the policy refuses; the message says why."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses only."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _refusal(host: str, address: str, *, allow_private: bool) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return f"{host} resolved to {address!r}, which is not an IP address"
    kind = address_class(ip)
    if kind is None:
        return None
    shown = host if host == address else f"{host} resolves to {address}, which"
    if kind in ALWAYS_REFUSED:
        return f"{shown} is a {kind} address and is never proxied to"
    if not allow_private:
        return (
            f"{shown} is a {kind} address; refused because private endpoints are not allowed "
            "(set allowPrivateEndpoint: true if this backend is meant to be on a private network)"
        )
    return None


async def _resolve(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        addresses = await resolver(host, port)
    except OSError as exc:
        raise EndpointRefusedError(f"cannot resolve backend host {host!r}: {exc}") from exc
    if not addresses:
        raise EndpointRefusedError(f"backend host {host!r} resolved to no address")
    return addresses


async def check_endpoint(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """The addresses ``url``'s host resolves to, when all of them are allowed.

    Raises :class:`EndpointRefusedError` when the URL has no host, the name does not resolve, or any
    address is refused by the policy above.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise EndpointRefusedError(f"backend URL {url!r} has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        addresses = [host]
    except ValueError:
        addresses = await _resolve(host, port, resolver)
    for address in addresses:
        reason = _refusal(host, address, allow_private=allow_private)
        if reason is not None:
            raise EndpointRefusedError(f"refusing to connect to the backend: {reason}")
    return addresses
