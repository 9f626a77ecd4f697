"""The proxy in remote mode (what an MCPRemoteProxy runs) against "remote" MCP servers on 127.0.0.1.

The remote is a real MCP server (server-everything in streamableHttp mode, or the in-repo fixture)
behind a *spy*: a reverse proxy that records the path, query and headers of every request the proxy
sends upstream, and can turn slow or answer garbage. A test issuer (``test_auth_flow.Issuer``) serves
discovery, JWKS and a token endpoint; tokens are minted in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests.dataplane.proxyutil import free_port, run_proxy, serve_asgi
from tests.support.auth import AUDIENCE, Issuer, bind
from tests.support.remote_proxy import Spy, client_for, in_process, remote_server

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def proxy_process(config: dict[str, Any], tmp: Path, env: dict[str, str]) -> AsyncIterator[str]:
    """``mcp-operator proxy --config FILE`` as a subprocess, started from a thread: its readiness waits
    for the spy and the issuer, which are served by this event loop."""
    with contextlib.ExitStack() as stack:
        base = await asyncio.to_thread(stack.enter_context, run_proxy(config=config, tmp=tmp, env=env))
        try:
            yield base
        finally:
            await asyncio.to_thread(stack.close)


def remote_config(spy_url: str, issuer: Issuer, **backend: Any) -> dict[str, Any]:
    return {
        "name": "remote",
        "backend": {
            "type": "http",
            "url": f"{spy_url}/tenant-a/mcp?team=blue",
            "allowPrivateEndpoint": True,  # the "remote" is on 127.0.0.1 in these tests
            **backend,
        },
        "oidc": {"issuer": issuer.url, "audience": AUDIENCE},
    }


@pytest.mark.parametrize("kind", ["everything", "fixture"])
async def test_remote_mode_rewrites_the_path_injects_credentials_and_never_forwards_the_inbound_token(
    kind: str, tmp_path: Path
) -> None:
    issuer = Issuer()
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    with remote_server(kind) as (upstream, (tool, args, expected)):
        spy = Spy(upstream)
        async with serve_asgi((issuer_sock, issuer.app()), (spy_sock, spy.app())):
            config = remote_config(
                spy_url,
                issuer,
                auth={"type": "bearerToken", "tokenSecretRef": {"env": "UPSTREAM_TOKEN"}},
                headerForward={
                    "addPlaintextHeaders": {"X-Client": "mcp-operator"},
                    "addHeadersFromSecret": [{"headerName": "X-Tenant", "valueSecretRef": {"env": "TENANT"}}],
                },
            )
            env = {"UPSTREAM_TOKEN": "upstream-credential", "TENANT": "acme"}
            inbound = issuer.mint()
            async with proxy_process(config, tmp_path, env) as base:
                async with client_for(base, inbound) as client:
                    tools = {t.name for t in (await client.list_tools()).tools}
                    assert tool in tools
                    result = await client.call_tool(tool, args)
                    assert expected in json.dumps(result.model_dump(mode="json")), result
                async with httpx2.AsyncClient(timeout=10) as http:
                    refused = await http.post(
                        f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
                    )
                assert (
                    refused.status_code == 401 and "resource_metadata" in refused.headers["www-authenticate"]
                )
    assert spy.seen, "the remote received nothing"
    assert {r["path"] for r in spy.seen} == {"/tenant-a/mcp"}
    assert {r["query"] for r in spy.seen} == {"team=blue"}
    for request in spy.seen:
        headers = request["headers"]
        assert headers["authorization"] == "Bearer upstream-credential"
        assert headers["x-tenant"] == "acme" and headers["x-client"] == "mcp-operator"
    assert inbound not in spy.header_values() and inbound.split(".")[2] not in json.dumps(spy.seen)
    assert any(tool in r["body"] for r in spy.seen)


async def wait_readyz(base: str, status: int, within: float = 20.0) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=5) as http:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            response = await http.get(f"{base}/readyz")
            if response.status_code == status or asyncio.get_running_loop().time() > deadline:
                return response
            await asyncio.sleep(0.1)


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def metrics(base: str) -> str:
    async with httpx2.AsyncClient(timeout=5) as http:
        return (await http.get(f"{base}/metrics")).text


async def test_ssrf_guard_refuses_a_loopback_remote_unless_allowed() -> None:
    issuer = Issuer()
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        async with serve_asgi((issuer_sock, issuer.app()), (spy_sock, spy.app())):
            config = remote_config(spy_url, issuer, allowPrivateEndpoint=False)
            async with in_process(config) as (base, _):
                response = await wait_readyz(base, 503, within=2)
                assert response.status_code == 503
                assert "loopback" in response.text and "allowPrivateEndpoint" in response.text, response.text
                await asyncio.sleep(0.5)
                assert spy.seen == [], "the guard must refuse before any request leaves the proxy"
                assert "mcp_proxy_backend_up 0.0" in await metrics(base)
            async with in_process(remote_config(spy_url, issuer)) as (base, _):
                assert (await wait_readyz(base, 200)).status_code == 200


async def test_upstream_down_slow_and_garbage_give_json_rpc_errors_and_metrics() -> None:
    issuer = Issuer()
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    inbound = issuer.mint()
    down_port = free_port()  # nothing listens here
    down = remote_config(f"http://127.0.0.1:{down_port}", issuer)
    down["limits"] = {"callTimeoutSeconds": 2}
    async with serve_asgi((issuer_sock, issuer.app())), in_process(down) as (base, _):
        response = await wait_readyz(base, 503, within=1)
        assert response.status_code == 503 and "unavailable" in response.text
        with pytest.raises(BaseException) as info:  # initialize or the call: both need the backend
            async with client_for(base, inbound) as client:
                await client.list_tools()
        error = leaf(info.value)
        assert isinstance(error, MCPError) and error.code == -32001, error
        assert "backend unavailable" in str(error) and "ConnectError" in str(error), error
        scraped = await metrics(base)
        assert "mcp_proxy_backend_up 0.0" in scraped
        restarts = [
            line for line in scraped.splitlines() if line.startswith("mcp_proxy_backend_restarts_total")
        ]
        assert restarts and float(restarts[0].split()[-1]) >= 1
        await slow_and_garbage(issuer, spy_sock, spy_url, inbound)


async def slow_and_garbage(issuer: Issuer, spy_sock: Any, spy_url: str, inbound: str) -> None:
    """A slow upstream (past callTimeoutSeconds) and one answering garbage, behind a working proxy."""
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        config = remote_config(spy_url, issuer, timeoutSeconds=5)
        config["limits"] = {"callTimeoutSeconds": 1}
        async with (
            serve_asgi((spy_sock, spy.app())),
            in_process(config) as (base, _),
            client_for(base, inbound) as client,
        ):
            assert (await client.call_tool("echo", {"text": "ok"})).is_error is False
            spy.delay = 3.0
            with pytest.raises(BaseException) as slow:
                await client.call_tool("echo", {"text": "slow"})
            error = leaf(slow.value)
            assert isinstance(error, MCPError) and "timed out" in str(error), error
            spy.delay, spy.garbage = 0.0, True
            with pytest.raises(BaseException) as garbage:
                await client.call_tool("echo", {"text": "garbage"})
            error = leaf(garbage.value)
            assert isinstance(error, MCPError) and error.code == -32700, error
            assert "Failed to parse JSON response" in str(error) and "upstream exploded" in str(error)
            scraped = await metrics(base)
            outcomes = [
                line
                for line in scraped.splitlines()
                if line.startswith('mcp_proxy_requests_total{method="tools/call"')
            ]
            count = {line.split('outcome="')[1].split('"')[0]: float(line.split()[-1]) for line in outcomes}
            assert count == {"ok": 1.0, "error": 2.0}, outcomes


FAST = {"limits": {"callTimeoutSeconds": 5}}


def client_credentials(issuer: Issuer, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> dict[str, Any]:
    """Outbound oauth2ClientCredentials against ``issuer``'s token endpoint, the secret in ``$CC_SECRET``."""
    monkeypatch.setenv("CC_SECRET", "client-secret")
    return {
        "type": "oauth2ClientCredentials",
        "tokenUrl": f"{issuer.url}/token",
        "clientId": "proxy",
        "clientSecretRef": {"env": "CC_SECRET"},
        **extra,
    }


async def test_client_credentials_token_is_injected_and_refreshed_before_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = Issuer()
    issuer.expires_in = 2  # with refreshMarginSeconds 1, the token is stale a second after it is issued
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        auth = client_credentials(issuer, monkeypatch, refreshMarginSeconds=1)
        inbound = issuer.mint()
        async with (
            serve_asgi((issuer_sock, issuer.app()), (spy_sock, spy.app())),
            in_process({**remote_config(spy_url, issuer, auth=auth), **FAST}) as (base, _),
            client_for(base, inbound) as client,
        ):
            await client.call_tool("echo", {"text": "one"})
            # Time passing is what is tested: the token (2 s, refreshed 1 s early) goes stale; no event.
            await asyncio.sleep(1.5)
            await client.call_tool("echo", {"text": "two"})
    tokens = {r["headers"].get("authorization") for r in spy.seen}
    assert {"Bearer cc-token-1", "Bearer cc-token-2"} <= tokens, tokens
    assert inbound not in spy.header_values()


async def test_token_exchange_gives_each_caller_an_exchanged_token_never_the_inbound_one(
    tmp_path: Path,
) -> None:
    issuer = Issuer()
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        auth = {"type": "tokenExchange", "tokenUrl": f"{issuer.url}/token", "audience": "https://remote"}
        alice, bob = issuer.mint(sub="alice"), issuer.mint(sub="bob")
        async with (
            serve_asgi((issuer_sock, issuer.app()), (spy_sock, spy.app())),
            proxy_process(remote_config(spy_url, issuer, auth=auth), tmp_path, {}) as base,
        ):
            for token, text in ((alice, "alice"), (bob, "bob")):
                async with client_for(base, token) as client:
                    result = await client.call_tool("echo", {"text": text})
                    assert result.structured_content == {"result": text}
    exchanges = [r for r in issuer.token_requests if r["grant_type"].endswith(":token-exchange")]
    assert {r["subject_token"] for r in exchanges} == {alice, bob}
    assert {r["audience"] for r in exchanges} == {"https://remote"}
    upstream_tokens = {r["headers"].get("authorization") for r in spy.seen}
    assert len(upstream_tokens) == 2 and all(t.startswith("Bearer exchanged-") for t in upstream_tokens), (
        upstream_tokens
    )
    assert alice not in spy.header_values() and bob not in spy.header_values()


async def test_failing_token_endpoint_gives_a_clear_error_and_backs_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = Issuer()
    issuer.token_status = 500
    (issuer_sock, issuer.url), (spy_sock, spy_url) = bind(), bind()
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        auth = client_credentials(issuer, monkeypatch)
        async with (
            serve_asgi((issuer_sock, issuer.app()), (spy_sock, spy.app())),
            in_process({**remote_config(spy_url, issuer, auth=auth), **FAST}) as (base, _),
        ):
            # A window with the endpoint down in which to count the proxy's retries (the assertion is on
            # that count), not a wait for a state: readiness is then polled with a deadline.
            await asyncio.sleep(3)
            response = await wait_readyz(base, 503, within=1)
            assert response.status_code == 503 and "token" in response.text.lower(), response.text
            assert "500" in response.text, response.text
            with pytest.raises(BaseException) as info:
                async with client_for(base, issuer.mint()) as client:
                    await client.list_tools()
            error = leaf(info.value)
            assert isinstance(error, MCPError) and "backend unavailable" in str(error), error
            attempts = len(issuer.token_requests)
    # ~4 s with the endpoint down: a retry loop without backoff would send hundreds of requests.
    assert 1 <= attempts <= 20, attempts
    assert all(r["headers"].get("authorization") is None for r in spy.seen)
