"""Failure handling of the virtual MCP gateway over real MCP servers (two fixture servers and Node
server-everything over legacy SSE, each its own process): one backend is killed and restarted and the
test walks its circuit through closed -> open -> half-open -> closed, checking at each step what clients
of both front eras get, while the other backends keep answering.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support import gateway_processes as gp
from tests.support.gateway_processes import Proc

pytestmark = pytest.mark.slow

OPEN_FOR = 3.0
"""The circuit's open duration: long enough to observe each state by polling /status."""


def _config(ports: dict[str, int], mode: str) -> dict[str, Any]:
    return {
        "name": "gw",
        "backends": [
            *({"name": name, "url": f"http://127.0.0.1:{ports[name]}/mcp"} for name in ("alpha", "beta")),
            {"name": "everything", "url": f"http://127.0.0.1:{ports['everything']}/sse", "transport": "sse"},
        ],
        "operational": {
            "timeouts": {"call": "10s", "list": "5s", "connect": "10s"},
            "failureHandling": {
                "healthCheckInterval": "300ms",
                "healthCheckTimeout": "2s",
                "unhealthyThreshold": 2,
                "partialFailureMode": mode,
                "circuitBreaker": {"enabled": True, "failureThreshold": 3, "timeout": f"{OPEN_FOR:g}s"},
            },
        },
    }


FIXTURE_TOOLS = {b: [f"{b}_add", f"{b}_echo", f"{b}_slow"] for b in ("alpha", "beta")}


def _listed(names: list[str] | str, *backends: str) -> bool:
    """Do the listed ``names`` hold exactly these fixture backends' tools, and server-everything's?"""
    if isinstance(names, str):
        return False
    fixture = sorted(n for n in names if n.startswith(("alpha_", "beta_")))
    return fixture == sorted(t for b in backends for t in FIXTURE_TOOLS[b]) and "everything_echo" in names


@dataclass
class Gateway:
    url: str
    config_path: Path
    ports: dict[str, int]
    procs: dict[str, Proc]

    def beta(self) -> dict[str, Any]:
        status: dict[str, Any] = gp.get_json(f"{self.url}/status")
        return next(b for b in status["backends"] if b["name"] == "beta")

    def wait_beta(self, what: str, **expected: Any) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            beta = self.beta()
            return beta if all(beta.get(k) == v for k, v in expected.items()) else None

        result: dict[str, Any] = gp.wait_until(matches, what=what)
        return result

    def set_mode(self, mode: str) -> None:
        gp.reload_config(self.url, self.config_path, _config(self.ports, mode))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    logdir = tmp_path_factory.mktemp("vmcp-failure")
    ports = {n: gp.free_port() for n in ("alpha", "beta", "everything", "gateway")}
    procs = {n: gp.fixture_server(n, ports[n], logdir) for n in ("alpha", "beta")}
    everything = [str(gp.NPM_BIN / "mcp-server-everything"), "sse"]
    procs["everything"] = gp.start("everything", everything, logdir, {"PORT": str(ports["everything"])})
    config_path = logdir / "vmcp.yaml"
    gp.write_config(config_path, _config(ports, "fail"))
    try:
        gp.wait_http(f"http://127.0.0.1:{ports['everything']}/sse", procs["everything"])
        url, procs["gateway"] = gp.vmcp_gateway(ports["gateway"], config_path, logdir)
        gp.wait_until(lambda: gp.get_json(f"{url}/status")["phase"] == "Ready", what="both backends ready")
        yield Gateway(url, config_path, ports, procs)
    finally:
        for proc in procs.values():
            proc.stop()


async def _call(
    gw: Gateway, tool: str, client: Client | None = None, mode: str = "auto"
) -> tuple[str, float]:
    """(the result text, or ``ERROR <message>`` for a JSON-RPC error; seconds the answer took), on a new
    client session or on ``client``, one that listed the tools before (so it does not list again)."""
    started = time.monotonic()
    try:
        async with contextlib.AsyncExitStack() as stack:
            if client is None:
                client = await stack.enter_async_context(Client(f"{gw.url}/mcp", mode=mode))
            result = await client.call_tool(tool, {"message": "hi"})
            text = "".join(getattr(c, "text", "") for c in result.content)
    except BaseException as exc:  # the client's task group wraps the MCPError
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        if not isinstance(exc, MCPError):
            raise
        text = f"ERROR {exc.error.code} {exc.message}"
    return text, time.monotonic() - started


async def _list(gw: Gateway) -> list[str] | str:
    """The listed tool names, or ``ERROR <message>`` when the list request is refused."""
    try:
        async with Client(f"{gw.url}/mcp") as client:
            return sorted(t.name for t in (await client.list_tools()).tools)
    except BaseException as exc:
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        if not isinstance(exc, MCPError):
            raise
        return f"ERROR {exc.error.code} {exc.message}"


async def test_a_killed_backend_walks_its_circuit_and_the_other_backends_keep_answering(
    gateway: Gateway,
) -> None:
    gw, procs = gateway, gateway.procs
    assert _listed(await _list(gw), "alpha", "beta")
    async with Client(f"{gw.url}/mcp") as steady:  # a client that listed while all was well
        await steady.list_tools()
        await _walk_the_circuit(gw, procs, steady)


async def _walk_the_circuit(gw: Gateway, procs: dict[str, Proc], steady: Client) -> None:
    beta = gw.beta()
    assert (beta["health"], beta["circuitBreakerState"]) == ("ready", "closed")
    assert beta["consecutiveFailures"] == 0

    # Killed: failed reconnects count; at 3 the circuit opens.
    procs["beta"].stop()
    beta = await anyio.to_thread.run_sync(lambda: gw.wait_beta("circuit open", circuitBreakerState="open"))
    assert beta["health"] == "unavailable" and beta["consecutiveFailures"] >= 3 and beta["lastError"]
    for mode in ("auto", "legacy"):  # both front eras
        text, seconds = await _call(gw, "beta_echo", mode=mode)
        assert text.startswith("ERROR -32001 backend 'beta' is unavailable (circuit open after ")
        assert seconds < 2.0  # refused by the gateway, never forwarded
    assert (await _call(gw, "alpha_echo", steady))[0] == "alpha: hi"
    assert (await _call(gw, "everything_echo", steady))[0] == "Echo: hi"
    listed = await _list(gw)  # partialFailureMode fail: the list names the unavailable backend
    assert isinstance(listed, str) and listed.startswith("ERROR -32001 backend(s) 'beta' unavailable")

    await anyio.to_thread.run_sync(lambda: gw.set_mode("best_effort"))
    assert _listed(await _list(gw), "alpha")
    assert (await _call(gw, "alpha_echo"))[0] == "alpha: hi"  # a new client lists first: it works now

    # Still down after the open duration: half-open, and calls are still refused until a trial succeeds.
    await anyio.to_thread.run_sync(lambda: gw.wait_beta("half-open", circuitBreakerState="half-open"))
    text, _ = await _call(gw, "beta_echo")
    assert text.startswith("ERROR -32001 backend 'beta' is unavailable (")

    # Restarted: the next trial closes the circuit and beta's tools come back.
    procs["beta"] = gp.fixture_server("beta", gw.ports["beta"], procs["gateway"].log.parent)
    beta = await anyio.to_thread.run_sync(
        lambda: gw.wait_beta("closed again", circuitBreakerState="closed", health="ready")
    )
    assert beta["consecutiveFailures"] == 0 and "lastError" not in beta
    assert (await _call(gw, "beta_echo"))[0] == "beta: hi"
    assert (await _call(gw, "alpha_echo", steady))[0] == "alpha: hi"
    assert (await _call(gw, "everything_echo", steady))[0] == "Echo: hi"
    assert _listed(await _list(gw), "alpha", "beta")
    log = procs["gateway"].log.read_text(errors="replace")
    for transition in ("closed -> open", "half-open -> closed"):
        assert f"backend beta circuit {transition}" in log
    assert "backend alpha circuit" not in log and "backend everything circuit" not in log
