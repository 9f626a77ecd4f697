"""``mcp-operator run`` without any way to reach the API server exits at once with one clear line,
naming what is missing and the fix, instead of a traceback (no cluster needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MCP_OPERATOR = Path(sys.executable).parent / "mcp-operator"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "KUBECONFIG is not set"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "the service-account token"),
        ({"KUBECONFIG": "/nonexistent/kubeconfig"}, "kubeconfig /nonexistent/kubeconfig does not exist"),
    ],
)
def test_no_credentials_is_one_error_line_and_exit_code_2(
    tmp_path: Path, environment: dict[str, str], expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env.update(environment, HOME=str(tmp_path))
    run = subprocess.run(
        [str(MCP_OPERATOR), "run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [json.loads(line) for line in run.stderr.splitlines() if '"level": "error"' in line]
    assert len(errors) == 1, run.stderr
    assert expected in errors[0]["error"]
    assert "KUBECONFIG" in errors[0]["error"]  # the fix is named
