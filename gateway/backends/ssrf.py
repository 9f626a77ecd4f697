"""SSRF guard: refuse to connect a backend whose host resolves to an address it must not reach.

The operator refuses literal addresses in ``spec.remoteUrl``; this checks what the name *resolves to*
right before each (re)connect, with the same address classes (:func:`api.checks.address_class`; the
policy table is in docs/remote-proxy.md). Every resolved address must pass. The resolver is a seam
(``Resolver(host, port) -> address strings``) so tests pass a fake one.
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
