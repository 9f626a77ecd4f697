"""Helpers for the proxy's data-plane tests: free ports, a proxy subprocess, real MCP peers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2

from tests.support.asgi import serve_asgi

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "mcp_fixture_server.py"
NPM_BIN = ROOT / "tests" / "npm" / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
FIXTURE_CMD = [sys.executable, str(FIXTURE)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, status: int = 200) -> httpx2.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = httpx2.get(url, timeout=2)
            if response.status_code == status:
                return response
        except httpx2.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s ({last})")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def run_proxy(
    *backend_args: str,
    config: dict[str, object] | None = None,
    tmp: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Start ``mcp-operator proxy`` on ``port`` (default: a free one); yields its base URL once /readyz
    is 200.

    ``log``: a file receiving the proxy's stderr (its log and audit lines); default: discarded.
    """
    port = port or free_port()
    args = [sys.executable, "-m", "controller.cli", "proxy", "--port", str(port)]
    if config is not None:
        assert tmp is not None
        path = tmp / f"proxy-{port}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        args += ["--config", str(path)]
    args += list(backend_args)
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stderr=stderr)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=90)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


@contextlib.contextmanager
def run_server(
    args: list[str], url: str, env: dict[str, str] | None = None, expect: int = 200
) -> Iterator[None]:
    """Start an HTTP MCP server subprocess and wait until ``url`` answers ``expect``."""
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx2.get(url, timeout=1)
                break
            except httpx2.HTTPError:
                time.sleep(0.1)
        yield
    finally:
        stop(process)


@contextlib.asynccontextmanager
async def proxy_in_process(backend: dict[str, object], **config: object) -> AsyncIterator[str]:
    """The proxy app (``build_proxy_app``) served in this event loop; yields its base URL once ready.

    Same code as ``mcp-operator proxy`` minus the process start-up (importing the SDK takes seconds on a
    busy machine); the CLI itself is exercised by the tests that use :func:`run_proxy`.
    """
    from api.proxy_config import ProxyConfig  # noqa: PLC0415 (keeps this helper module light)
    from gateway.proxy import build_proxy_app  # noqa: PLC0415
    from gateway.transports import describe_backend, transport_for  # noqa: PLC0415

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    proxy_config = ProxyConfig.model_validate({**config, "port": port, "backend": backend})
    app, runtime = build_proxy_app(
        proxy_config, transport_for(proxy_config.backend), description=describe_backend(proxy_config.backend)
    )
    async with serve_asgi((sock, app)):
        deadline = time.monotonic() + 90
        while not runtime.backend.ready:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backend not ready: {runtime.backend.readiness()[1]}")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
