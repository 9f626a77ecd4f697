"""Change notifications through the real gateway: a backend's own list_changed (the fixture's ``grow``
adds a tool), a member joining (a config reload) and a composite tool added reach an SDK client within
2 s, as ``notifications/tools/list_changed`` on a 2025-11-25 session and as an event of its
``subscriptions/listen`` stream on the 2026-07-28 era."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.support.gateway_processes import (
    Proc,
    fixture_server,
    free_port,
    gateway_process,
    get_json,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow
WITHIN = 2.0


@dataclass
class Stack:
    url: str
    config_path: Path
    backends: dict[str, str]

    def configure(self, *names: str, composite: bool = False) -> None:
        before = get_json(f"{self.url}/status")["reloads"]
        config: dict[str, Any] = {
            "name": "gw",
            "backends": [{"name": n, "url": self.backends[n]} for n in names],
            "operational": {"timeouts": {"connect": "20s"}},
        }
        if composite:
            config["compositeTools"] = [
                {"name": "add_twice", "description": "d", "steps": [{"id": "a", "tool": "one.add"}]}
            ]
        write_config(self.config_path, config)
        wait_until(lambda: get_json(f"{self.url}/status")["reloads"] > before, what="config reload")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logdir = tmp_path_factory.mktemp("list-changed")
    ports = {n: free_port() for n in ("one", "two", "gateway")}
    procs: list[Proc] = []
    try:
        procs += [fixture_server(n, ports[n], logdir, growable=True) for n in ("one", "two")]
        config_path = logdir / "vmcp.yaml"
        backends = {n: f"http://127.0.0.1:{ports[n]}/mcp" for n in ("one", "two")}
        write_config(config_path, {"name": "gw", "backends": [{"name": "one", "url": backends["one"]}]})
        procs.append(gateway_process(ports["gateway"], config_path, logdir, "--reload-interval", "0.2"))
        url = f"http://127.0.0.1:{ports['gateway']}"
        wait_until(lambda: get_json(f"{url}/status")["phase"] == "Ready", what="backend one ready")
        yield Stack(url, config_path, backends)
    finally:
        for proc in procs:
            proc.stop()


async def test_legacy_session_hears_tools_list_changed(stack: Stack) -> None:
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    async with Client(f"{stack.url}/mcp", mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.tools is not None and client.server_capabilities.tools.list_changed
        before = {t.name for t in (await client.list_tools()).tools}
        assert "two_add" not in before
        stack.configure("one", "two")
        with anyio.fail_after(WITHIN):
            await heard.wait()
        assert "two_add" in {t.name for t in (await client.list_tools()).tools}
    stack.configure("one")


async def test_modern_listen_stream_hears_a_member_join_and_a_composite_tool(stack: Stack) -> None:
    async with Client(f"{stack.url}/mcp", mode="auto") as client:
        await client.list_tools()
        async with client.listen(tools_list_changed=True) as subscription:
            stack.configure("one", "two")
            with anyio.fail_after(WITHIN):
                event = await subscription.__anext__()
            assert "tools" in type(event).__name__.lower()
            assert "two_add" in {t.name for t in (await client.list_tools()).tools}
            stack.configure("one", "two", composite=True)
            with anyio.fail_after(WITHIN):
                await subscription.__anext__()
            assert "add_twice" in {t.name for t in (await client.list_tools()).tools}
    stack.configure("one")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_backends_own_list_changed_reaches_the_client(stack: Stack, mode: str) -> None:
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    tool = f"grown_{mode}"
    async with Client(f"{stack.url}/mcp", mode=mode, message_handler=on_message) as client:
        await client.list_tools()
        if mode == "legacy":
            await client.call_tool("one_grow", {"tool": tool})
            with anyio.fail_after(WITHIN):
                await heard.wait()
        else:
            async with client.listen(tools_list_changed=True) as subscription:
                await client.call_tool("one_grow", {"tool": tool})
                with anyio.fail_after(WITHIN):
                    await subscription.__anext__()
        assert f"one_{tool}" in {t.name for t in (await client.list_tools()).tools}
