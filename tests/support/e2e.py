"""What the end-to-end tests share: the locally built images, ``hack/cluster`` with its progress shown,
polling, kubectl's JSON, MCPServers applied and waited for, and MCP clients pointed at a Service."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import helm_python as helm
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.support.cluster import HACK_CLUSTER, ROOT, Cluster
from tests.support.gateway_processes import NPM_BIN

IMAGE_REGISTRY = "localhost/mcp-operator"
OPERATOR_IMAGE = f"{IMAGE_REGISTRY}/mcp-operator"
TIME_SERVER_IMAGE = f"{IMAGE_REGISTRY}/mcp-server-time:dev"  # USER 65532:65532
FIXTURE_SERVER_IMAGE = f"{IMAGE_REGISTRY}/mcp-fixture-server:dev"
EVERYTHING_IMAGE = f"{IMAGE_REGISTRY}/server-everything:dev"
BASE_IMAGE = f"{IMAGE_REGISTRY}/debian-python:bookworm"  # runs as root
NAMED_USER_IMAGE = f"{IMAGE_REGISTRY}/named-user:dev"  # USER mcp (a name, no uid)
REDIS_IMAGE = f"{IMAGE_REGISTRY}/redis:dev"  # Debian's redis-server, no persistence
IMAGES = [
    "mcp-operator",
    "mcp-server-time",
    "mcp-fixture-server",
    "server-everything",
    "debian-python",
    "named-user",
    "redis",
]
# A stdio MCP server in the Python standard library alone, for images that hold python3 but no MCP SDK (the
# base image, the named-user image): one tool, "whoami", answering the process's uid, gid and HOME.
WHOAMI_SERVER = """
import json, os, sys
TOOL = {"name": "whoami", "description": "uid, gid, HOME", "inputSchema": {"type": "object"}}
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or "method" not in msg:
        continue
    method, result = msg["method"], None
    if method == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "whoami", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        text = f"uid={os.getuid()} gid={os.getgid()} home={os.environ.get('HOME')}"
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    elif method == "ping":
        result = {}
    answer = {"jsonrpc": "2.0", "id": msg["id"]}
    if result is None:
        answer["error"] = {"code": -32601, "message": f"method {method} not found"}
    else:
        answer["result"] = result
    print(json.dumps(answer), flush=True)
"""
# A streamable-HTTP MCP server in the Python standard library alone (JSON answers, no SSE), listening on
# 0.0.0.0:8000: one tool, "headers", answering the HTTP headers of the request that called it.
HEADERS_SERVER = """
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
TOOL = {"name": "headers", "description": "the request's headers", "inputSchema": {"type": "object"}}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, code, body=b"", kind="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(405)
    def do_DELETE(self):
        self.answer(405)
    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if "id" not in msg:
            return self.answer(202)
        method, result = msg.get("method"), None
        if method == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "headers", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call":
            text = json.dumps({k.lower(): v for k, v in self.headers.items()})
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        elif method == "ping":
            result = {}
        reply = {"jsonrpc": "2.0", "id": msg["id"]}
        if result is None:
            reply["error"] = {"code": -32601, "message": f"method {method} not found"}
        else:
            reply["result"] = result
        self.answer(200, json.dumps(reply).encode())
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""
SERVER_LABELS = "app.kubernetes.io/name=mcpserver,app.kubernetes.io/component=server"
T = TypeVar("T")


@dataclass
class OperatorRelease:
    """Both charts installed with the locally built image, the operator pod Ready."""

    namespace: str
    name: str
    config: helm.Config


def hack(env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """``hack/cluster ARGS`` with its progress on the terminal; fails the session with its last line."""
    result = subprocess.run(
        [sys.executable, str(HACK_CLUSTER), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/cluster {' '.join(args)} failed (exit {result.returncode}); its message is above")
    return result


def eventually(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns a value (not None/False); fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        if last is not None and last is not False and not isinstance(last, AssertionError):
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    pytest.fail(f"{what}: not reached after {timeout:.0f} s (last: {last!r})")


def kubectl_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl(*args, "-o", "json").stdout))


def apply_manifest(cluster: Cluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def apply_resource(cluster: Cluster, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """``kubectl apply`` of one of the project's resources (``kind``) with ``spec``."""
    apply_manifest(
        cluster,
        {
            "apiVersion": "mcp-operator.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )


def apply_server(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    apply_resource(cluster, "MCPServer", namespace, name, spec)


def wait_ready(cluster: Cluster, namespace: str, name: str, kind: str = "mcpserver") -> None:
    result = cluster.kubectl(
        "wait", "-n", namespace, f"{kind}/{name}", "--for=condition=Ready", "--timeout=180s", check=False
    )
    if result.returncode != 0:
        described = cluster.kubectl("get", "-n", namespace, f"{kind},pods,events", "-o", "wide", check=False)
        pytest.fail(f"{kind} {name} not Ready: {result.stderr}\n{described.stdout}")


def python_pod(
    cluster: Cluster, namespace: str, name: str, script: str, env: dict[str, str] | None = None
) -> str:
    """Pod and Service ``name`` running ``python3 -c script`` (the base image) that listens on :8000, Ready;
    its in-cluster base URL."""
    labels = {"app": name}
    container = {
        "name": name,
        "image": BASE_IMAGE,
        "command": ["python3", "-c", script],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    metadata = {"name": name, "namespace": namespace}
    pod = {"metadata": {**metadata, "labels": labels}, "spec": {"containers": [container]}}
    apply_manifest(cluster, {"apiVersion": "v1", "kind": "Pod", **pod})
    service = {"selector": labels, "ports": [{"port": 8000, "targetPort": 8000}]}
    apply_manifest(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": service})
    cluster.kubectl("wait", "-n", namespace, f"pod/{name}", "--for=condition=Ready", "--timeout=120s")
    return f"http://{name}.{namespace}.svc.cluster.local:8000"


def server_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The server pods of MCPServer ``name`` (not its proxy's)."""
    selector = f"{SERVER_LABELS},app.kubernetes.io/instance={name}"
    return list(kubectl_json(cluster, "get", "pods", "-n", namespace, "-l", selector)["items"])


def ready_condition(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    found = kubectl_json(cluster, "get", kind, "-n", namespace, name)
    conditions = found.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Ready"), None)


def service_base(cluster: Cluster, namespace: str, name: str) -> str:
    """http://CLUSTERIP:PORT of the Service ``name`` (reached from the host through kube-proxy).

    A Ready pod reaches the Service's endpoints and kube-proxy's rules a moment later (as on any
    cluster), so this waits until the ClusterIP accepts connections."""
    svc = kubectl_json(cluster, "get", "service", "-n", namespace, name)
    address = (svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"])
    wait_accepting(address, f"Service {name}")
    return f"http://{address[0]}:{address[1]}"


def wait_accepting(address: tuple[str, int], what: str) -> None:
    def accepts() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=2):
            return True
        return False

    eventually(accepts, 30, f"{what} at {address} accepts connections")


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def call_everywhere(base: str, tool: str, args: dict[str, Any]) -> dict[str, tuple[list[str], str]]:
    """Per front (/mcp modern, /mcp legacy, /sse): the tool names and the call's text."""
    fronts: dict[str, Callable[[], Client]] = {
        "mcp-modern": lambda: Client(f"{base}/mcp", mode="auto"),
        "mcp-legacy": lambda: Client(f"{base}/mcp", mode="legacy"),
        "sse": lambda: Client(sse_client(f"{base}/sse"), mode="legacy"),
    }
    seen = {}
    for front, connect in fronts.items():
        with anyio.fail_after(60):
            async with connect() as client:
                tools = sorted(t.name for t in (await client.list_tools()).tools)
                result = await client.call_tool(tool, args)
                assert not result.is_error, (front, text_of(result))
                seen[front] = (tools, text_of(result))
    return seen


async def call_tool(url: str, tool: str, args: dict[str, Any]) -> str:
    """One tools/call over streamable HTTP at ``url``; the answer's text (an error result fails)."""
    async with Client(url, mode="auto") as client:
        result = await client.call_tool(tool, args)
        assert not result.is_error, text_of(result)
        return text_of(result)


async def tool_names(url: str) -> list[str]:
    async with Client(url, mode="auto") as client:
        return sorted(t.name for t in (await client.list_tools()).tools)


async def retry(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` until it succeeds (the caller bounds the time)."""
    while True:
        try:
            return await attempt()
        except Exception:
            await anyio.sleep(1)


def inspector(*args: str) -> dict[str, Any]:
    """The MCP Inspector CLI (npm, tests/npm) against a URL; its JSON answer."""
    done = subprocess.run(
        [str(NPM_BIN / "mcp-inspector"), "--cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))
