"""`make run` (hack/run-local): installs the CRDs into the configured cluster, runs the operator in the
foreground, and stops cleanly on Ctrl-C, leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import ROOT, Cluster
from tests.support.processes import free_port, wait_http


def test_run_local_uses_kubeconfig_installs_crds_and_stops_on_ctrl_c(cluster: Cluster) -> None:
    health, metrics = free_port(), free_port()
    env = dict(
        os.environ,
        KUBECONFIG=str(cluster.kubeconfig),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    proc = subprocess.Popen(
        [
            str(ROOT / "hack" / "run-local"),
            f"--health-probe-bind-address=127.0.0.1:{health}",
            f"--metrics-bind-address=127.0.0.1:{metrics}",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert wait_http(f"http://127.0.0.1:{health}/healthz", timeout=120) == (200, "ok")
        crds = cluster.kubectl("get", "crd", "-o", "name").stdout
        for plural in ("mcpservers", "mcpremoteproxies", "virtualmcpservers", "mcpgroups", "mcptoolconfigs"):
            assert f"{plural}.mcp-operator.dev" in crds
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the foreground group
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "using the cluster in KUBECONFIG" in err
    assert '"event": "stopped"' in err
    leftover = subprocess.run(
        ["ps", "-o", "pid=", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == "", f"processes left behind: {leftover.stdout}"
