"""The operator process: starts, logs JSON, serves /healthz, stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.support.cluster import Cluster
from tests.support.processes import MCP_OPERATOR, free_port, wait_http


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_operator_starts_logs_json_serves_health_and_stops(cluster: Cluster, sig: signal.Signals) -> None:
    port = free_port()
    metrics_port = free_port()
    proc = subprocess.Popen(
        [
            str(MCP_OPERATOR),
            "run",
            f"--health-probe-bind-address=127.0.0.1:{port}",
            f"--metrics-bind-address=127.0.0.1:{metrics_port}",
            "--leader-elect=false",
            f"--kubeconfig={cluster.kubeconfig}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status, body = wait_http(f"http://127.0.0.1:{port}/healthz")
        assert (status, body) == (200, "ok")
        proc.send_signal(sig)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    lines = [line for line in proc.stderr.read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records, "the operator logged nothing"
    assert all({"level", "timestamp", "logger", "event"} <= r.keys() for r in records), records
    assert records[-1]["event"] == "stopped"
