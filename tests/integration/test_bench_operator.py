"""hack/bench_operator stays honest: a small run whose write and reconcile counts are exact.

Counts only, never timings: creating N stdio MCPServers costs one write per child (8) plus one status
write each, an image roll writes only the changed child (the StatefulSet) plus status, exactly as
the bare floor does, and a steady window with resync on writes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import Cluster, install_crds

ROOT = Path(__file__).resolve().parents[2]
N = 5


def test_bench_operator_counts_are_exact(cluster: Cluster, tmp_path: Path) -> None:
    install_crds(cluster)
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "bench_operator"), "--kubeconfig", str(cluster.kubeconfig),
         "--n", str(N), "--repeats", "1", "--steady", "12", "--resync", "4", "--edits", "3",
         "--json", str(out), "--log", str(tmp_path / "operator.log")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, f"hack/bench_operator failed:\n{run.stderr[-3000:]}"
    assert "| create N, converge (s) |" in run.stdout  # the table docs/benchmarks.md shows
    counts = json.loads(out.read_text())["counts"]

    for floor in ("floor16", "floor64"):
        assert counts[f"{floor}.create_own_writes_per_server"] == 9
        assert counts[f"{floor}.roll_own_writes_per_server"] == 2

    # As the API server counted them: at least these. In the suite other writers share the API server
    # (kube-controller-manager adds a token Secret to each ServiceAccount and empties the namespaces
    # earlier tests deleted), so the exact figures are the clients' own counts below.
    created = counts["operator.create_writes_by_resource"]
    expected = {"mcpservers/status": N, "statefulsets": N, "deployments": N, "services": N,
                "configmaps": N, "serviceaccounts": 2 * N, "roles": N, "rolebindings": N}  # fmt: skip
    assert all(created.get(kind, 0) >= count for kind, count in expected.items()), created
    assert counts["operator.create_own_writes_per_server"] == 9  # the operator's own rest_client count
    assert counts["operator.create_missing_children"] == 0

    assert counts["operator.steady_own_writes"] == 0
    assert counts["operator.steady_reconciles"] >= N, "no resync happened in the steady window"

    assert counts["operator.roll_own_writes_per_server"] == 2
    rolled = counts["operator.roll_writes_by_resource"]
    assert rolled.get("statefulsets", 0) >= N and rolled.get("mcpservers/status", 0) >= N, rolled
    assert counts["operator.roll_missing_children"] == 0
