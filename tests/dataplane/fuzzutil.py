"""Shared pieces of the data-plane fuzz tests: a served process with its pid, RSS, raw HTTP, frames.

Bounds: every request has a timeout, every generator a fixed number of examples (hypothesis is used only
to *draw* inputs, derandomized, then the inputs are sent to the one running process), and every server
started here is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.sse import sse_client

from tests.dataplane.proxyutil import ROOT, free_port, stop, wait_http

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
# RSS may grow while allocators and caches warm up; unbounded growth is what this catches. The factor is
# deliberately generous (a leak of every fuzzed body would exceed it many times over).
RSS_GROWTH_FACTOR = 2.0


@dataclass
class Served:
    """A data-plane process under test."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def rss_kib(self) -> int:
        """Resident memory of the process (``VmRSS`` in /proc/<pid>/status), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def assert_alive(self) -> None:
        assert self.process.poll() is None, f"the process exited ({self.process.returncode}): {self.tail()}"

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:] if self.log.exists() else ""


@contextlib.contextmanager
def run_entrypoint(command: str, config: dict[str, Any], tmp: Path) -> Iterator[Served]:
    """``mcp-operator <command> --config FILE`` on a free 127.0.0.1 port, once /readyz answers 200."""
    port = free_port()
    path = tmp / f"{command}-{port}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    log = tmp / f"{command}-{port}.log"
    args = [sys.executable, "-m", "controller.cli", command, "--port", str(port), "--config", str(path)]
    with log.open("ab") as stderr:
        process = subprocess.Popen(args, cwd=ROOT, env=dict(os.environ), stderr=stderr)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=90)
            yield Served(f"http://127.0.0.1:{port}", process, log)
        finally:
            stop(process)


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection, half-close, and read until the server closes or times out.

    Raises ``TimeoutError`` when the server neither answers nor closes within ``timeout`` (a hang).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before all is sent
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise TimeoutError(f"no answer and no close within {timeout} s for {data[:120]!r}") from None
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    """The status code of the first response in ``answer`` (None when the server just closed)."""
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


def assert_raw_requests_answered(port: int, count: int) -> int:
    """Send ``count`` fuzzed raw HTTP requests: each gets a non-5xx answer or a close, never a hang.

    Returns how many got an answer (not just a close)."""
    answered = 0
    for data in draw(raw_requests, count):
        answer = raw_exchange(port, data)
        status = status_of(answer)
        assert status is None or status < 500, (data[:200], answer[:300])
        answered += status is not None
    return answered


def post_head(port: int) -> bytes:
    """The head of a JSON ``POST /mcp`` without its framing (Content-Length or Transfer-Encoding)."""
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    head = b"POST /mcp HTTP/1.1\r\n" + host + b"Accept: application/json, text/event-stream\r\n"
    return head + b"Content-Type: application/json\r\n"


def chunked_past(head: bytes, limit: int, chunk_size: int) -> bytes:
    """``head`` with a chunked body (no length declared) of ``chunk_size`` chunks passing ``limit`` bytes."""
    chunk = b"x" * chunk_size
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // chunk_size + 2))
    return chunked + b"0\r\n\r\n"


def post_fuzzed_frames(http: httpx2.Client, base: str, count: int) -> dict[int, int]:
    """``count`` fuzzed bodies to ``base``/mcp, alternately stateless with fuzzed headers and inside a live
    2025-11-25 session: none gets a 5xx, and the session still answers a ping afterwards.

    Returns how many answers each status code got."""
    drawn = draw(bodies, count)
    headers = draw(header_sets, count)
    statuses: dict[int, int] = {}
    session = initialize_session(http, base)
    in_session = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    for i, body in enumerate(drawn):
        sent = {**ACCEPT, **headers[i]} if i % 2 else in_session
        response = http.post(f"{base}/mcp", content=body, headers=sent)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (body[:200], sent, response.status_code, response.text[:300])
    ping = http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": "p", "method": "ping"}, headers=in_session)
    assert ping.status_code == 200 and '"result"' in ping.text, ping.text
    return statuses


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` derandomized examples of ``strategy`` (the same inputs on every run)."""
    examples: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        examples.append(value)

    collect()
    return examples


async def assert_serves_correctly(
    served: Served, tool: str, arguments: dict[str, Any], expected: Any
) -> None:
    """Every front (modern /mcp, legacy /mcp session, /sse) still answers a real client correctly."""
    fronts: list[Callable[[], AbstractAsyncContextManager[Client]]] = [
        lambda: Client(f"{served.base}/mcp", mode="auto"),
        lambda: Client(f"{served.base}/mcp", mode="legacy"),
        lambda: Client(sse_client(f"{served.base}/sse"), mode="legacy"),
    ]
    for connect in fronts:
        async with connect() as client:
            result = await client.call_tool(tool, arguments)
            assert result.structured_content == expected


def assert_rss_bounded(served: Served, before_kib: int) -> None:
    after = served.rss_kib()
    assert after <= before_kib * RSS_GROWTH_FACTOR, f"RSS grew from {before_kib} KiB to {after} KiB"


def initialize_session(http: httpx2.Client, base: str) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "fuzzer", "version": "0"},
        },
    }
    response = http.post(f"{base}/mcp", json=init, headers=ACCEPT)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return session


class SlowClients:
    """Connections that misbehave in the background: trickled bodies, half-sent headers, unread streams."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()
        self.trickled = 0

    def open(self, data: bytes) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(data)
        self.sockets.append(sock)
        return sock

    def open_all(
        self, *, trickled: int = 5, slowloris: int = 20, unread_streams: int = 5, pipelined: int = 5
    ) -> None:
        """Open each kind: bodies trickled a byte at a time, headers never finished (slowloris), SSE streams
        never read, and connections of 50 pipelined requests whose answers are never read."""
        host = f"Host: 127.0.0.1:{self.port}\r\n".encode()
        for _ in range(trickled):
            sock = self.open(
                b"POST /mcp HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\nContent-Length: 4000\r\n\r\n"
            )
            self.start_trickle(sock, 4000)
        for _ in range(slowloris):
            self.open(b"POST /mcp HTTP/1.1\r\n" + host + b"X-Slow: ")
        for _ in range(unread_streams):
            self.open(b"GET /sse HTTP/1.1\r\n" + host + b"Accept: text/event-stream\r\n\r\n")
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
        request = (
            b"POST /mcp HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
            b"Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2026-07-28\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(frame), frame)
        )
        for _ in range(pipelined):
            self.open(request * 50)

    def start_trickle(self, sock: socket.socket, total: int) -> None:
        """Send one byte every 50 ms on ``sock`` until :meth:`close` (never the whole declared body)."""
        thread = threading.Thread(target=self._trickle, args=(sock, total), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _trickle(self, sock: socket.socket, total: int) -> None:
        sent = 0
        while not self.stop.is_set() and sent < total - 1:
            try:
                sock.sendall(b" ")
            except OSError:
                return
            sent += 1
            self.trickled += 1
            self.stop.wait(0.05)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


async def assert_slow_clients_hold_up_no_one(
    served: Served, serves_correctly: Callable[[], Awaitable[None]], **counts: int
) -> None:
    """While misbehaving connections (``SlowClients.open_all(**counts)``) stay open, well-behaved clients
    are answered correctly three times over, and still are once those connections close."""
    slow = SlowClients(served.port)
    try:
        slow.open_all(**counts)
        started = slow.trickled
        for _ in range(3):
            await serves_correctly()
        assert not slow.stop.is_set() and slow.trickled > started, (
            "the slow clients were not running meanwhile"
        )
        served.assert_alive()
    finally:
        slow.close()
    await serves_correctly()


async def eventually_serves(check: Callable[[], Awaitable[None]], within: float = 60.0) -> None:
    """Retry ``check`` until it passes (a gateway connects its backends after it starts serving)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await check()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# -- inputs ---------------------------------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
json_values = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
)
_ids = (
    st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=20) | st.floats(allow_nan=False) | json_values
)
_methods = st.sampled_from(
    [
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "prompts/get",
        "notifications/initialized",
        "notifications/cancelled",
        "logging/setLevel",
        "completion/complete",
        "",
        "../../etc/passwd",
        "tools/call\x00",
    ]
) | st.text(max_size=40)
_params = (
    st.none()
    | json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["echo", "add", "slow", "crash", "nope"]) | st.text(max_size=20),
            "arguments": json_values,
            "uri": st.text(max_size=60),
            "_meta": json_values,
            "protocolVersion": st.sampled_from(["2025-11-25", "2026-07-28", "1999-01-01"])
            | st.text(max_size=12),
            "capabilities": json_values,
            "clientInfo": json_values,
        },
    )
)
frames = st.fixed_dictionaries(
    {},
    optional={"jsonrpc": st.sampled_from(["2.0", "1.0", ""]) | json_values, "id": _ids, "method": _methods},
).flatmap(lambda frame: st.fixed_dictionaries({}, optional={"params": _params}).map(lambda p: {**frame, **p}))
bodies = st.one_of(
    frames.map(lambda f: json.dumps(f).encode()),
    st.lists(frames, max_size=5).map(lambda fs: json.dumps(fs).encode()),  # batches
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),  # not JSON, maybe not UTF-8
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
    st.integers(1, 3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)
header_sets = st.fixed_dictionaries(
    {},
    optional={
        "accept": st.sampled_from(["application/json, text/event-stream", "text/event-stream", "*/*", "x/y"]),
        "content-type": st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1"]
        ),
        "mcp-protocol-version": st.sampled_from(["2025-11-25", "2026-07-28", "2025-03-26", "garbage", ""]),
        "mcp-session-id": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
        "last-event-id": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    },
)
_tokens = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)
raw_requests = st.one_of(
    st.binary(min_size=1, max_size=400),
    st.builds(
        lambda method, target, version, headers, body: (
            f"{method} {target} {version}\r\n".encode()
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
            + b"\r\n"
            + body
        ),
        st.sampled_from(["GET", "POST", "DELETE", "OPTIONS", "PUT", "CONNECT", "TRACE"]) | _tokens,
        st.sampled_from(["/mcp", "/sse", "/messages/", "/messages/?session_id=zz", "/health", "*", "//x/mcp"])
        | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "FOO"]),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["Host", "Content-Length", "Transfer-Encoding", "Content-Type", "Accept", "Origin"]
                )
                | _tokens,
                st.sampled_from(
                    ["127.0.0.1", "-1", "99999999999999999999", "chunked", "chunked, identity", "0"]
                )
                | _tokens,
            ),
            max_size=6,
        ),
        st.binary(max_size=200),
    ),
)


# -- a canary: a server no request should ever reach (SSRF attempts name it) ----------------------------


class Canary:
    """An HTTP server on 127.0.0.1 counting the requests it receives."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = _hit  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
