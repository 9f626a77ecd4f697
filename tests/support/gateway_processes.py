"""Processes of the gateway data-plane tests and benchmark: ports, start and stop, the fixture server.

The fixture backend is this module run as a script: ``python tests/support/gateway_processes.py PORT
NAME`` serves an ``MCPServer`` with ``echo`` (which collides with server-everything's), ``add``, ``slow``,
a prompt and a resource on ``/mcp`` (both eras) and ``/sse``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import uvicorn
import yaml
from mcp.server import MCPServer
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context

from telemetry import start_tracing

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NPM_BIN = ROOT / "tests" / "npm" / "node_modules" / ".bin"
START_TIMEOUT = 90.0  # the CI box has 2 cores shared with the whole suite; Python start-up is slow there


SDK_PATH_GATEWAY = """
import sys
import uvicorn
from api.vmcp_config import load_vmcp_config
from gateway.vmcp.server import build_vmcp_app
app, _ = build_vmcp_app(load_vmcp_config(sys.argv[2]), port=int(sys.argv[1]), fast_path=False)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
"""``python -c SDK_PATH_GATEWAY PORT CONFIG``: the gateway as ``mcp-operator vmcp`` runs it, minus the
fast path (every request on the SDK's server path), for comparisons."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A process started by a test, stopped by its pid (its whole session: proxies own a stdio child)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start(name: str, argv: Sequence[str], logdir: Path, env: dict[str, str] | None = None) -> Proc:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=logdir,
            start_new_session=True,
        )
    return Proc(name, popen, log)


def wait_http(url: str, proc: Proc, timeout: float = START_TIMEOUT) -> None:
    """Until ``url`` answers any HTTP status (the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{proc.name} did not answer {url} within {timeout}s:\n{proc.output()}")


def fixture_server(
    name: str,
    port: int,
    logdir: Path,
    list_ttl_ms: int = 0,
    env: dict[str, str] | None = None,
    mutable: bool = False,
) -> Proc:
    """The fixture backend; ``list_ttl_ms`` is the ``ttlMs`` its modern-era lists carry; ``mutable`` adds
    the ``grow`` tool (adds a tool and announces the change) and ``touch`` (announces a resource update)."""
    argv = [sys.executable, __file__, str(port), name, str(list_ttl_ms), *(["mutable"] if mutable else [])]
    proc = start(name, argv, logdir, env)
    wait_http(f"http://127.0.0.1:{port}/mcp", proc)
    return proc


def vmcp_gateway(
    port: int, config_path: Path, logdir: Path, env: dict[str, str] | None = None
) -> tuple[str, Proc]:
    """``mcp-operator vmcp`` on ``port`` over ``config_path`` (polled every 0.2 s), up: (URL, process)."""
    argv = [str(BIN / "mcp-operator"), "vmcp", "--port", str(port)]
    argv += ["--config", str(config_path), "--reload-interval", "0.2"]
    proc = start("gateway", argv, logdir, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc)
    except BaseException:
        proc.stop()
        raise
    return url, proc


def proxied_stdio(
    name: str, port: int, command: Sequence[str], logdir: Path, env: dict[str, str] | None = None
) -> Proc:
    """A stdio MCP server behind the project's proxy (``mcp-operator proxy --port P -- CMD``)."""
    proc = start(name, [str(BIN / "mcp-operator"), "proxy", "--port", str(port), "--", *command], logdir, env)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Atomically replace the gateway's config file (as the kubelet swaps a ConfigMap volume)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config))
    os.replace(tmp, path)


def reload_config(url: str, path: Path, config: dict[str, Any]) -> None:
    """Write a new config for the gateway at ``url`` and wait until it applied it."""
    before = get_json(f"{url}/status")["reloads"]
    write_config(path, config)
    wait_until(lambda: get_json(f"{url}/status")["reloads"] > before, what="config reload")


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


@dataclass
class FixtureGateway:
    """``mcp-operator vmcp`` over the fixture servers ``alpha`` and ``beta``, each its own process: its
    URL, its process, and how to rewrite its config (``config(ports, **options)``)."""

    url: str
    process: Proc
    config_path: Path
    backend_ports: dict[str, int]
    config: Callable[..., dict[str, Any]]

    def reconfigure(self, **options: bool) -> None:
        reload_config(self.url, self.config_path, self.config(self.backend_ports, **options))

    def log(self) -> list[dict[str, Any]]:
        from tests.support.processes import json_records  # noqa: PLC0415 - this file also runs as a script

        return json_records(self.process.log.read_text(errors="replace"))  # the whole log, not its tail


@contextlib.contextmanager
def fixture_gateway(
    logdir: Path, config: Callable[[dict[str, int]], dict[str, Any]]
) -> Iterator[FixtureGateway]:
    """The gateway (config ``config(ports)``, ``ports`` of ``alpha`` and ``beta``) once both are ready."""
    ports = {n: free_port() for n in ("alpha", "beta", "gateway")}
    procs: dict[str, Proc] = {}
    try:
        procs |= {n: fixture_server(n, ports[n], logdir) for n in ("alpha", "beta")}
        config_path = logdir / "vmcp.yaml"
        write_config(config_path, config(ports))
        url, procs["gateway"] = vmcp_gateway(ports["gateway"], config_path, logdir)
        wait_until(lambda: get_json(f"{url}/status")["phase"] == "Ready", what="both backends ready")
        yield FixtureGateway(url, procs["gateway"], config_path, ports, config)
    finally:
        for proc in procs.values():
            proc.stop()


@contextlib.contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


def _serve(port: int, name: str, list_ttl_ms: int, mutable: bool) -> None:
    server = MCPServer(name, cache_hints={"tools/list": CacheHint(ttl_ms=list_ttl_ms)})

    if mutable:

        @server.tool()
        async def grow(tool: str, ctx: Context) -> str:
            """Add a tool named ``tool`` and announce it on subscriptions/listen streams."""

            def added(message: str) -> str:
                return f"{name} {tool}: {message}"

            server.add_tool(added, name=tool, description="Added at run time.")
            await ctx.notify_tools_changed()
            return f"added {tool}"

        @server.tool()
        async def touch(uri: str, ctx: Context) -> str:
            """Announce that resource ``uri`` changed, on subscriptions/listen streams."""
            await ctx.notify_resource_updated(uri)
            return f"touched {uri}"

    @server.tool()
    def echo(message: str) -> str:
        """Echo the message back, marked with this server's name."""
        return f"{name}: {message}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer (for in-flight and timeout tests)."""
        await anyio.sleep(seconds)
        return f"{name}: slept {seconds}"

    @server.prompt()
    def greeting(who: str) -> str:
        """A greeting prompt."""
        return f"Hello {who} from {name}"

    @server.resource(f"fixture://{name}/info")
    def info() -> str:
        """Which server this is."""
        return f"fixture {name}"

    app = server.streamable_http_app()
    app.router.routes.extend(server.sse_app().routes)
    # With OTEL_EXPORTER_OTLP_ENDPOINT set (the tracing tests), the SDK's own server spans are exported.
    traces = start_tracing(f"fixture-{name}")
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        traces.shutdown()


if __name__ == "__main__":
    _serve(
        int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0, "mutable" in sys.argv[4:]
    )
