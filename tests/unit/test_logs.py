"""One log format for the operator, the proxy and the gateway (``logs.configure_logging``): each process,
run for real, writes JSON lines with the keys ``timestamp``, ``level``, ``logger`` and ``event`` plus the
line's context; ``LOG_FORMAT`` / ``LOG_LEVEL`` switch every one of them the same way."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gateway_processes import Proc, free_port, start, stopping, wait_until
from tests.support.processes import MCP_OPERATOR

SHARED_KEYS = {"timestamp", "level", "logger", "event"}
SCRIPT = """
import logging, sys
from logs import configure_logging
configure_logging(sys.argv[1])
logging.getLogger("httpx2").info("HTTP Request: POST http://backend/mcp")
logging.getLogger("mcp.server.streamable_http_manager").info("Created new transport with session ID: 1f")
logging.getLogger("mcp_operator.backend").info("backend %s connected", "fixture")
"""


def unreachable() -> str:
    """An HTTP MCP URL where nothing listens (the process keeps logging its reconnection attempts)."""
    return f"http://127.0.0.1:{free_port()}/mcp"


def operator(tmp: Path) -> list[str]:
    return [str(MCP_OPERATOR), "run", f"--kubeconfig={tmp / 'missing-kubeconfig'}"]


def proxy(tmp: Path) -> list[str]:
    return [str(MCP_OPERATOR), "proxy", "--port", str(free_port()), "--target", unreachable()]


def gateway(tmp: Path) -> list[str]:
    config = tmp / "vmcp.yaml"
    backends = [{"name": "down", "url": unreachable(), "transport": "streamable-http"}]
    config.write_text(yaml.safe_dump({"name": "gw", "backends": backends}))
    return [str(MCP_OPERATOR), "vmcp", "--port", str(free_port()), "--config", str(config)]


PROCESSES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # process -> (command, a logger whose line it writes once started)
    "operator": (operator, "mcp-operator"),
    "proxy": (proxy, "mcp_operator.backend"),
    "gateway": (gateway, "mcp_operator.backend"),
}


def lines_of(proc: Proc) -> list[str]:
    return [line for line in proc.log.read_text(errors="replace").splitlines() if line.strip()]


def records_once_logged(proc: Proc, logger: str) -> list[dict[str, Any]]:
    """Every line ``proc`` wrote, parsed, once one comes from ``logger`` (fails on a non-JSON line)."""

    def parsed() -> list[dict[str, Any]] | None:
        records = []
        for line in lines_of(proc):
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"{proc.name} wrote a line that is not JSON: {line!r}")
        return records if any(r.get("logger") == logger for r in records) else None

    found: list[dict[str, Any]] = wait_until(parsed, timeout=60, what=f"a {logger} line from {proc.name}")
    return found


@pytest.mark.parametrize("process", list(PROCESSES))
def test_every_process_writes_json_lines_with_the_shared_keys(process: str, tmp_path: Path) -> None:
    command, logger = PROCESSES[process]
    proc = start(process, command(tmp_path), tmp_path)
    with stopping(proc):
        records = records_once_logged(proc, logger)
    for record in records:
        assert record.keys() >= SHARED_KEYS, record
        assert record["level"] in {"debug", "info", "warning", "error", "critical"}, record
        assert record["timestamp"].endswith("Z") and "T" in record["timestamp"], record
    own = next(r for r in records if r["logger"] == logger)
    assert isinstance(own["event"], str) and own["event"], own


def test_the_operator_line_carries_its_context_as_keys(tmp_path: Path) -> None:
    proc = start("operator", operator(tmp_path), tmp_path)
    with stopping(proc):
        wait_until(lambda: proc.popen.poll() is not None, timeout=60, what="the operator's exit")
    assert proc.popen.returncode == 2, proc.output()
    records = [json.loads(line) for line in lines_of(proc)]
    (error,) = [r for r in records if r["level"] == "error"]
    assert (error["logger"], error["event"]) == ("mcp-operator", "no Kubernetes API to talk to")
    assert "missing-kubeconfig" in error["error"], error


@pytest.mark.parametrize("process", list(PROCESSES))
def test_log_format_console_switches_every_process(process: str, tmp_path: Path) -> None:
    command, logger = PROCESSES[process]
    proc = start(process, command(tmp_path), tmp_path, env={"LOG_FORMAT": "console"})
    with stopping(proc):
        wait_until(
            lambda: any(logger in line for line in lines_of(proc)), timeout=60, what=f"a {logger} line"
        )
    for line in lines_of(proc):
        with pytest.raises(ValueError):
            json.loads(line)


@pytest.mark.parametrize(("level", "request_logged"), [("info", False), ("debug", True)])
def test_backend_requests_are_logged_only_at_debug(level: str, request_logged: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, check=True, timeout=60
    )
    records = [json.loads(line) for line in result.stderr.splitlines()]
    events = [r["event"] for r in records]
    assert "backend fixture connected" in events
    assert ("HTTP Request: POST http://backend/mcp" in events) is request_logged, result.stderr
    assert ("Created new transport with session ID: 1f" in events) is request_logged, result.stderr
    assert all(r.keys() >= SHARED_KEYS for r in records), records
