"""The proxy's SSRF guard: what a backend host resolves to decides whether the proxy connects."""

from __future__ import annotations

import pytest

from gateway.backends.ssrf import EndpointRefusedError, check_endpoint


def resolver_for(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


REFUSED_WITHOUT_OPT_IN = [
    "127.0.0.1",
    "::1",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.7",
    "fd00::1",
    "::ffff:10.0.0.5",
    "::ffff:127.0.0.1",
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
]
ALWAYS_REFUSED = [
    "169.254.169.254",
    "fe80::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "::ffff:169.254.169.254",
]


@pytest.mark.parametrize("address", REFUSED_WITHOUT_OPT_IN)
async def test_a_name_resolving_to_a_private_address_is_refused_unless_allowed(address: str) -> None:
    resolve = resolver_for({"mcp.example.com": [address]})
    with pytest.raises(EndpointRefusedError) as info:
        await check_endpoint("https://mcp.example.com/mcp", allow_private=False, resolver=resolve)
    message = str(info.value)
    assert "mcp.example.com" in message and address in message and "allowPrivateEndpoint" in message
    assert await check_endpoint("https://mcp.example.com/mcp", allow_private=True, resolver=resolve) == [
        address
    ]


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
async def test_link_local_metadata_unspecified_and_multicast_are_refused_even_when_allowed(
    address: str,
) -> None:
    resolve = resolver_for({"evil.example.com": [address]})
    for allow in (False, True):
        with pytest.raises(EndpointRefusedError, match="never proxied to"):
            await check_endpoint("http://evil.example.com/mcp", allow_private=allow, resolver=resolve)


async def test_every_resolved_address_must_pass() -> None:
    resolve = resolver_for({"mixed.example.com": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(EndpointRefusedError, match=r"10\.1\.2\.3"):
        await check_endpoint("https://mixed.example.com/mcp", allow_private=False, resolver=resolve)


async def test_public_addresses_pass_and_the_port_defaults_by_scheme() -> None:
    resolve = resolver_for({"mcp.example.com": ["93.184.216.34", "2606:2800:220:1::"]})
    assert await check_endpoint("https://mcp.example.com/mcp", allow_private=False, resolver=resolve) == [
        "93.184.216.34",
        "2606:2800:220:1::",
    ]
    await check_endpoint("http://mcp.example.com:8443/x", allow_private=False, resolver=resolve)
    assert resolve.calls == [("mcp.example.com", 443), ("mcp.example.com", 8443)]  # type: ignore[attr-defined]


async def test_literal_addresses_are_judged_without_resolving() -> None:
    resolve = resolver_for({})
    with pytest.raises(EndpointRefusedError, match="private"):
        await check_endpoint("http://[fd00::1]:9000/mcp", allow_private=False, resolver=resolve)
    assert await check_endpoint("http://127.0.0.1:9000/mcp", allow_private=True, resolver=resolve) == [
        "127.0.0.1"
    ]
    assert resolve.calls == []  # type: ignore[attr-defined]


async def test_unresolvable_and_hostless_urls_are_refused_with_the_reason() -> None:
    resolve = resolver_for({})
    with pytest.raises(EndpointRefusedError, match=r"cannot resolve backend host 'nowhere\.invalid'"):
        await check_endpoint("https://nowhere.invalid/mcp", allow_private=True, resolver=resolve)
    with pytest.raises(EndpointRefusedError, match="has no host"):
        await check_endpoint("http:///mcp", allow_private=True, resolver=resolve)


async def test_the_system_resolver_sees_localhost_as_loopback() -> None:
    with pytest.raises(EndpointRefusedError, match="localhost resolves to"):
        await check_endpoint("http://localhost:1/mcp", allow_private=False)
