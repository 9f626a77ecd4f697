"""Independent clients through the proxy: the MCP Inspector CLI and the MCP conformance suite.

The conformance suite (server mode, node 22) runs against the in-repo fixture server over streamable HTTP
directly, and against the proxy in front of the same fixture over stdio; the proxy must pass at least
every scenario the fixture passes directly (counts are reported in ``docs/proxy.md``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane.proxyutil import FIXTURE_CMD, NPM_BIN, ROOT, free_port, run_proxy, run_server

pytestmark = pytest.mark.slow

NODE_ENV = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
_RESULT = re.compile(r"^[✓✗] (?P<scenario>[\w-]+): (?P<passed>\d+) passed, (?P<failed>\d+) failed$", re.M)


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    with run_proxy("--", *FIXTURE_CMD) as base:
        yield base


def _inspector(*args: str) -> object:
    done = subprocess.run(
        [str(NPM_BIN / "mcp-inspector"), "--cli", *args],
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(("path", "transport"), [("/mcp", "http"), ("/sse", "sse")])
def test_inspector_cli_lists_and_calls_tools(proxy_url: str, path: str, transport: str) -> None:
    url = f"{proxy_url}{path}"
    listed = _inspector(url, "--transport", transport, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[index]
    assert {"echo", "add", "test_simple_text"} <= names
    called = _inspector(
        url, "--transport", transport, "--method", "tools/call", "--tool-name", "add",
        "--tool-arg", "a=20", "--tool-arg", "b=22",
    )  # fmt: skip
    expected = {
        "content": [{"type": "text", "text": "42"}],
        "structuredContent": {"result": 42},
        "isError": False,
    }
    assert called == expected


def conformance(url: str, out: Path) -> dict[str, tuple[int, int]]:
    """Run the whole server suite against ``url``: scenario -> (passed checks, failed checks)."""
    done = subprocess.run(
        [str(NPM_BIN / "conformance"), "server", "--url", url, "-o", str(out)],
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,  # exit 1 when any scenario fails; the summary is what we compare
        cwd=ROOT,
    )
    results = {m["scenario"]: (int(m["passed"]), int(m["failed"])) for m in _RESULT.finditer(done.stdout)}
    assert results, f"no conformance summary in the output:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return results


def test_conformance_through_the_proxy_at_least_as_good_as_direct(proxy_url: str, tmp_path: Path) -> None:
    port = free_port()
    direct_url = f"http://127.0.0.1:{port}/mcp"
    with run_server([*FIXTURE_CMD, "streamable-http", str(port)], direct_url):
        direct = conformance(direct_url, tmp_path / "direct")
    proxied = conformance(f"{proxy_url}/mcp", tmp_path / "proxy")
    passed_direct = {name for name, (_, failed) in direct.items() if failed == 0}
    passed_proxied = {name for name, (_, failed) in proxied.items() if failed == 0}
    assert passed_direct - passed_proxied == set(), "scenarios passing directly but failing through the proxy"
    assert sum(p for p, _ in proxied.values()) >= sum(p for p, _ in direct.values())
    # The fixture implements the suite's tools, resources and prompts: all but subscriptions pass.
    assert {"tools-call-sampling", "tools-call-elicitation", "tools-call-with-logging"} <= passed_proxied
