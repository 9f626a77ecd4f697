"""The operator as the faults meet it: a real ``mcp-operator run`` process, its metrics, its identity."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from kubernetes_asyncio import client, config

from tests.support.cluster import ROOT
from tests.support.kube import Api
from tests.support.processes import MCP_OPERATOR, free_port

FAST_QPS = ["--kube-api-qps=0", "--kube-api-burst=1000"]
"""The client-side limiter off: 20 qps would make 1,800 writes take 90 s and hide the fault's effect in
the limiter's queue. The 429 scenario keeps the default limiter instead (see there)."""


@contextlib.asynccontextmanager
async def namespace_on(kubeconfig: Path) -> AsyncIterator[Api]:
    """A fresh namespace on the cluster of ``kubeconfig`` and the test's own client for it."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    async with client.ApiClient(cfg) as api:
        name = f"f-{uuid.uuid4().hex[:10]}"
        core = client.CoreV1Api(api)
        await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        try:
            yield Api(api, name)
        finally:
            with contextlib.suppress(client.ApiException, OSError):
                await core.delete_namespace(name)


class OperatorProcess:
    """``mcp-operator run`` as a real process watching one namespace."""

    def __init__(self, kubeconfig: Path, namespace: str, *flags: str) -> None:
        self.metrics_port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - read after the process ends
        self.proc = subprocess.Popen(
            [
                str(MCP_OPERATOR),
                "run",
                f"--kubeconfig={kubeconfig}",
                f"--namespace={namespace}",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                "--health-probe-bind-address=127.0.0.1:0",
                f"--leader-election-namespace={namespace}",
                *flags,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=ROOT,
        )

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels`` (0 when unreachable)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def leading(self) -> bool:
        return self.metric("leader_election_master_status") == 1.0

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no Lease release."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)

    def log_tail(self, lines: int = 5) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


async def service_account_kubeconfig(kube: Api, admin_kubeconfig: Path, directory: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound to cluster-admin: the operator's identity as in a cluster.

    Not ``system:masters`` (the admin token is): the API server exempts that group from its in-flight
    limits, so only an ordinary identity can be throttled with 429.
    """
    name = "mcp-operator"
    await kube.core.create_namespaced_service_account(
        kube.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    await kube.rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"{kube.ns}-{name}"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=kube.ns)],
        )
    )
    request = await kube.core.create_namespaced_service_account_token(
        name,
        kube.ns,
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        },
    )
    return with_token(admin_kubeconfig, request.status.token, directory / "operator-kubeconfig")


def with_token(kubeconfig: Path, token: str, path: Path) -> Path:
    """A copy of ``kubeconfig`` (hack/cluster's JSON) whose only user authenticates with ``token``."""
    data = json.loads(kubeconfig.read_text())
    data["users"] = [{"name": "admin", "user": {"token": token}}]
    path.write_text(json.dumps(data))
    return path
