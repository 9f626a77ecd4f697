"""``make run`` without a KUBECONFIG: the operator installed by its charts on the local real node.

Brings up the local control plane with a real node (``hack/cluster up --node``), builds the operator
image and an example MCP server image locally (cached), installs (or upgrades) both charts with that
image, runs the example MCPServer, and prints its URL and a one-line client command that work from this
machine. Then it follows the operator's log; Ctrl-C stops following (the operator keeps running in the
cluster; ``hack/cluster down`` stops everything).

Runs with the project's virtual environment (Helm through helm-python-sdk, kubectl from PyPI).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import helm_python as helm

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NAMESPACE = "mcp-operator-system"
DEMO_NAMESPACE = "demo"
OPERATOR_IMAGE = "localhost/mcp-operator/mcp-operator"
EXAMPLE = {
    "apiVersion": "mcp-operator.dev/v1beta1",
    "kind": "MCPServer",
    "metadata": {"name": "time", "namespace": DEMO_NAMESPACE},
    "spec": {"image": "localhost/mcp-operator/mcp-server-time:dev", "transport": "stdio"},
}


def say(msg: str) -> None:
    print(f"[run] {msg}", file=sys.stderr, flush=True)


def hack_cluster(*args: str) -> str:
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster"), *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"[run] hack/cluster {' '.join(args)} failed; its message is above")
    return proc.stdout


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"[run] kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


def adopt_crds(kubeconfig: str) -> None:
    """Hand CRDs applied earlier (by kubectl or another release) to this release (docs/install.md)."""
    names = kubectl(kubeconfig, "get", "crd", "-o", "name").split()
    ours = [n for n in names if n.endswith(".mcp-operator.dev")]
    if ours:
        kubectl(kubeconfig, "label", *ours, "--overwrite", "app.kubernetes.io/managed-by=Helm")
        release = [
            "meta.helm.sh/release-name=mcp-operator-crds",
            f"meta.helm.sh/release-namespace={NAMESPACE}",
        ]
        kubectl(kubeconfig, "annotate", *ours, "--overwrite", *release)


def install_charts(kubeconfig: str) -> None:
    """Install both charts, or upgrade them when an earlier ``make run`` installed them."""
    values = {"image": {"repository": OPERATOR_IMAGE, "tag": "dev", "pullPolicy": "IfNotPresent"}}
    with helm.Config(kubeconfig_path=kubeconfig, namespace=NAMESPACE) as cfg:
        installed = {release["name"] for release in cfg.list()}
        if "mcp-operator-crds" not in installed:
            adopt_crds(kubeconfig)
        for chart, name, chart_values in (
            ("mcp-operator-crds", "mcp-operator-crds", None),
            ("mcp-operator", "mcp-operator", values),
        ):
            if name in installed:
                cfg.upgrade(ROOT / "charts" / chart, name, chart_values, namespace=NAMESPACE, timeout=300)
            else:
                cfg.install(ROOT / "charts" / chart, name, chart_values, namespace=NAMESPACE, timeout=300)
    # The image tag stays "dev" across rebuilds: restart so the pod runs the image just imported.
    kubectl(kubeconfig, "rollout", "restart", "-n", NAMESPACE, "deployment/mcp-operator")
    kubectl(kubeconfig, "rollout", "status", "-n", NAMESPACE, "deployment/mcp-operator", "--timeout=300s")


def main() -> int:
    os.environ.setdefault("MCP_OPERATOR_CLUSTER", "dev")
    say("starting the local control plane and a real node (built once, cached)")
    kubeconfig = hack_cluster("up", "--node").strip().splitlines()[-1].split("=", 1)[1]
    say("building (cached) and importing the operator image and the example server image")
    hack_cluster("images", "mcp-operator", "mcp-server-time")
    existing = kubectl(kubeconfig, "get", "namespaces", "-o", "name")
    for namespace in (NAMESPACE, DEMO_NAMESPACE):
        if f"namespace/{namespace}" not in existing.split():
            kubectl(kubeconfig, "create", "namespace", namespace)
    say(f"installing the charts into {NAMESPACE} with {OPERATOR_IMAGE}:dev")
    install_charts(kubeconfig)
    say(f"running the example MCPServer {DEMO_NAMESPACE}/time (mcp-server-time, stdio)")
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(EXAMPLE))
    kubectl(
        kubeconfig, "wait", "-n", DEMO_NAMESPACE, "mcpserver/time", "--for=condition=Ready", "--timeout=300s"
    )
    cluster_ip = kubectl(
        kubeconfig, "get", "service", "-n", DEMO_NAMESPACE, "time", "-o", "jsonpath={.spec.clusterIP}"
    )
    url = f"http://{cluster_ip}:8080/mcp"
    local_inspector = ROOT / "tests" / "npm" / "node_modules" / ".bin" / "mcp-inspector"  # make npm
    inspector = str(local_inspector) if local_inspector.exists() else "npx @modelcontextprotocol/inspector"
    print(
        f"\nThe MCP server is Ready at {url} (its ClusterIP, reachable from this machine).\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  {BIN / 'kubectl'} get mcpservers -n {DEMO_NAMESPACE}\n"
        f"  {inspector} --cli {url} --transport http --method tools/list\n"
        "Following the operator's log; Ctrl-C stops following (hack/cluster down stops everything).\n",
        file=sys.stderr,
        flush=True,
    )
    follow = ["logs", "-f", "-n", NAMESPACE, "deployment/mcp-operator"]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={kubeconfig}", *follow], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
