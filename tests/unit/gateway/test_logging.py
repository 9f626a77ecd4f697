"""The data plane's log configuration: the HTTP client's per-request line only at debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import logging, sys
from gateway.observability import configure_logging
configure_logging(sys.argv[1])
logging.getLogger("httpx2").info("HTTP Request: POST http://backend/mcp")
logging.getLogger("mcp_operator.backend").info("backend connected")
"""


@pytest.mark.parametrize(("level", "request_logged"), [("info", False), ("debug", True)])
def test_backend_requests_are_logged_only_at_debug(level: str, request_logged: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, check=True, timeout=60
    )
    assert "backend connected" in result.stderr
    assert ("HTTP Request" in result.stderr) is request_logged, result.stderr
