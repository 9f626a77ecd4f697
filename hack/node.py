"""A real single node for a local control plane instance (``hack/cluster up --node``): pods really run.

containerd + runc + CNI bridge networking from Debian; kubelet, kube-proxy (iptables) and kube-scheduler
built from the same source tree as the control plane; a socat forwarder that gives the ``kubernetes``
Service an endpoint pods can reach (the API server listens on 127.0.0.1 only); and a cluster DNS
stand-in (``hack/clusterdns.py``). Everything runs as a process of its own, recorded by pid; state
lives in the instance's ``node/`` directory, and ``down`` puts the host back as it was
(``hack/nodehost.py``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import controlplane as cp
import images
import k8sbuild
import nodehost
import steps
from kubeapi import Api, ApiError

# The API server reaches the kubelet (logs, exec, attach) at the Node's Hostname address; kubelet refuses a
# loopback node IP, so the node is named after the name that resolves to 127.0.0.1 everywhere.
NODE_NAME = "localhost"
POD_SUBNET = "10.244.0.0/24"
BRIDGE_IP = "10.244.0.1"  # the pods' gateway; also where the API forwarder and cluster DNS listen
NODE = steps.STATE / "node"
SOCKET = NODE / "containerd.sock"
HOST_STATE = NODE / "host.json"
MANAGER = "mcp-operator-hack-node"
APT_PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "socat": "/usr/bin/socat",
    "iproute2": "/usr/sbin/ip",
    "gcc": "/usr/bin/gcc",
    "libc6-dev": "/usr/lib/x86_64-linux-gnu/libc.a",
}
PROCESSES = ("kube-proxy", "kubelet", "kube-scheduler", "cluster-dns", "apiserver-forward", "containerd")


def say(msg: str) -> None:
    steps.say(f"node: {msg}")


def node_ports() -> dict[str, int]:
    path = NODE / "ports.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    ports = steps.free_ports(["kubelet", "kubelet_healthz", "scheduler", "proxy_healthz", "proxy_metrics"])
    path.write_text(json.dumps(ports))
    return ports


def api(ports: dict[str, int]) -> Api:
    pki = steps.STATE / "pki"
    return Api.from_files(
        f"https://127.0.0.1:{ports['apiserver']}", pki / cp.ADMIN_TOKEN_FILE, pki / "ca.crt"
    )


# ------------------------------------------------------------------------------------------- files


def write_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged file alone: kube-proxy exits when its configuration file is rewritten."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def client_kubeconfig(name: str, common_name: str, org: str, apiserver_port: int) -> Path:
    """A kubeconfig with a client certificate (CN/O) signed by the cluster CA."""
    pki, out = steps.STATE / "pki", NODE / "pki"
    out.mkdir(parents=True, exist_ok=True)
    key, crt = out / f"{name}.key", out / f"{name}.crt"
    if not crt.exists():
        subj = f"/CN={common_name}" + (f"/O={org}" if org else "")
        csr, ca = str(out / f"{name}.csr"), ["-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key")]
        for step, args in (
            ("key", ["genrsa", "-out", str(key), "2048"]),
            ("csr", ["req", "-new", "-key", str(key), "-subj", subj, "-out", csr]),
            ("cert", ["x509", "-req", "-in", csr, *ca, "-CAcreateserial", "-days", "3650", "-out", str(crt)]),
        ):
            steps.run(f"openssl: {name} {step}", ["openssl", *args], quiet=True, hint="install openssl")
    path = NODE / f"{name}.kubeconfig"
    cluster = {"server": f"https://127.0.0.1:{apiserver_port}", "certificate-authority": str(pki / "ca.crt")}
    user = {"client-certificate": str(crt), "client-key": str(key)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "local",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": name}}],
    }
    write_if_changed(path, json.dumps(config, indent=2))
    return path


def containerd_config() -> Path:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{NODE / "containerd" / "root"}"
state = "{NODE / "containerd" / "state"}"
[grpc]
  address = "{SOCKET}"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{NODE / "containerd" / "opt"}"
[{cri}]
  sandbox_image = "{images.PAUSE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "/usr/sbin/runc"
  Root = "{NODE / "runc"}"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{NODE / "cni"}"
"""
    path = NODE / "containerd.toml"
    write_if_changed(path, text)
    (NODE / "cni").mkdir(exist_ok=True)
    conflist = {
        "cniVersion": "0.4.0",
        "name": "mcp-operator-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": nodehost.BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(NODE / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    write_if_changed(NODE / "cni" / "10-mcp-operator.conflist", json.dumps(conflist, indent=2))
    return path


def kubelet_config(ports: dict[str, int]) -> Path:
    write_if_changed(NODE / "resolv.conf", "")  # pods get the cluster DNS only, not the host's search list
    config: dict[str, Any] = {
        "kind": "KubeletConfiguration",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "address": "127.0.0.1",
        "port": ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet_healthz"],
        # The API server reaches logs/exec/attach here; the kubelet listens on 127.0.0.1 only.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "clusterDNS": [BRIDGE_IP],
        "clusterDomain": "cluster.local",
        "resolvConf": str(NODE / "resolv.conf"),
        "failSwapOn": False,
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE in a container: negative scores cannot be set
        # Images are imported, never pulled: image garbage collection would delete them for good.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "volumePluginDir": str(NODE / "volume-plugins"),
        "serializeImagePulls": False,
        "runtimeRequestTimeout": "5m",
    }
    path = NODE / "kubelet.json"
    write_if_changed(path, json.dumps(config, indent=2))
    return path


def kube_proxy_config(ports: dict[str, int], kubeconfig: Path) -> Path:
    config = {
        "kind": "KubeProxyConfiguration",
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": "10.244.0.0/16",
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports['proxy_healthz']}",
        "metricsBindAddress": f"127.0.0.1:{ports['proxy_metrics']}",
        "hostnameOverride": NODE_NAME,
        "oomScoreAdj": 0,
        "nodePortAddresses": ["127.0.0.0/8"],
        # 0 leaves the host's conntrack settings as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # Every Service connection is masqueraded, so replies come back through the host even when a
        # pod calls a Service backed by a pod on the same bridge (no br_netfilter needed).
        "iptables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
    }
    path = NODE / "kube-proxy.json"
    write_if_changed(path, json.dumps(config, indent=2))
    return path


# --------------------------------------------------------------------------------------------- up


def ensure_bridge() -> None:
    """The pods' bridge with its gateway address, made before any pod so the forwarder can bind it."""
    bridge = nodehost.BRIDGE
    shown = subprocess.run(["ip", "link", "show", bridge], capture_output=True, check=False)
    if shown.returncode != 0:
        steps.run("create bridge", ["ip", "link", "add", bridge, "type", "bridge"], quiet=True)
    addrs = steps.run("bridge address", ["ip", "-o", "addr", "show", "dev", bridge], quiet=True)
    if f"{BRIDGE_IP}/" not in addrs:
        steps.run(
            "bridge address", ["ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", nodehost.BRIDGE], quiet=True
        )
    steps.run("bridge up", ["ip", "link", "set", nodehost.BRIDGE, "up"], quiet=True)


def wait_for(step: str, check: Any, timeout: float, component: str) -> Any:
    """Poll ``check`` until it returns a true value; fail naming the step and the component's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if component and not steps.running(component):
            steps.fail(
                step,
                f"{component} exited: {steps.log_tail(component)}; see {steps.STATE / (component + '.log')}",
            )
        result = check()
        if result:
            return result
        time.sleep(0.5)
    steps.fail(step, f"not done after {timeout:.0f} s: {steps.log_tail(component)}; see {steps.STATE}")


def start_containerd() -> None:
    config = containerd_config()
    steps.start_process("containerd", ["/usr/bin/containerd", "--config", str(config), "--log-level", "warn"])
    wait_for("start containerd", lambda: ctr("version", check=False).returncode == 0, 60, "containerd")


def ctr(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["/usr/bin/ctr", "--address", str(SOCKET), "--namespace", "k8s.io", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        steps.fail(f"ctr {args[0]}", proc.stderr.strip()[-300:])
    return proc


def api_objects(client: Api, apiserver_port: int) -> None:
    """RBAC for the kubelet's identity, and an endpoint pods can reach for the ``kubernetes`` Service."""
    client.apply(
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{MANAGER}",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": MANAGER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:node",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"system:node:{NODE_NAME}"}
            ],
        },
        MANAGER,
    )
    port = {"name": "https", "port": apiserver_port, "protocol": "TCP"}
    client.apply(
        "/api/v1/namespaces/default/endpoints/kubernetes",
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": BRIDGE_IP}], "ports": [port]}],
        },
        MANAGER,
    )
    client.apply(
        "/apis/discovery.k8s.io/v1beta1/namespaces/default/endpointslices/kubernetes",
        {
            "apiVersion": "discovery.k8s.io/v1beta1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [BRIDGE_IP], "conditions": {"ready": True}}],
            "ports": [port],
        },
        MANAGER,
    )


def start_node_processes(ports: dict[str, int], nports: dict[str, int], admin: Path) -> None:
    bins, pki, api_port = k8sbuild.NODE_BIN_DIR, steps.STATE / "pki", ports["apiserver"]
    forward = [f"TCP-LISTEN:{api_port},bind={BRIDGE_IP},reuseaddr,fork", f"TCP:127.0.0.1:{api_port}"]
    steps.start_process("apiserver-forward", ["/usr/bin/socat", *forward])
    dns = [str(Path(__file__).with_name("clusterdns.py")), "--server", f"https://127.0.0.1:{api_port}"]
    dns += ["--token-file", str(pki / cp.ADMIN_TOKEN_FILE), "--ca-file", str(pki / "ca.crt")]
    steps.start_process("cluster-dns", [sys.executable, *dns, "--listen", f"{BRIDGE_IP}:53"])
    auth = [
        f"--kubeconfig={admin}",
        f"--authentication-kubeconfig={admin}",
        f"--authorization-kubeconfig={admin}",
    ]
    serve = [
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={nports['scheduler']}",
        "--port=0",
    ]
    steps.start_process("kube-scheduler", [str(bins / "kube-scheduler"), *auth, *serve])
    kubelet_kc = client_kubeconfig("kubelet", f"system:node:{NODE_NAME}", "system:nodes", api_port)
    kubelet = [
        f"--config={kubelet_config(nports)}",
        f"--kubeconfig={kubelet_kc}",
        "--container-runtime=remote",
    ]
    kubelet += [f"--container-runtime-endpoint=unix://{SOCKET}", f"--root-dir={NODE / 'kubelet'}"]
    kubelet += [
        f"--cert-dir={NODE / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
    ]
    steps.start_process("kubelet", [str(bins / "kubelet"), *kubelet, "--v=1"])
    proxy_kc = client_kubeconfig("kube-proxy", "system:kube-proxy", "", api_port)
    steps.start_process(
        "kube-proxy", [str(bins / "kube-proxy"), f"--config={kube_proxy_config(nports, proxy_kc)}"]
    )


def node_ready(client: Api) -> bool:
    try:
        node = client.get(f"/api/v1/nodes/{NODE_NAME}")
    except ApiError:
        return False
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", [])
    )
    tainted = any(
        t["key"] == "node.kubernetes.io/not-ready" for t in node.get("spec", {}).get("taints") or []
    )
    return ready and not tainted


def ensure_only_node() -> None:
    """Refuse a second node on this machine (one bridge, one set of fixed host paths)."""
    for other in sorted((steps.CACHE / "clusters").glob("*/node/host.json")):
        if other != HOST_STATE:
            name = other.parent.parent.name
            steps.fail(
                "start the node",
                f"instance '{name}' runs the node; stop it: MCP_OPERATOR_CLUSTER={name} hack/cluster down",
            )


def up(ports: dict[str, int], admin: Path) -> None:
    """Start the node (idempotent: what runs is kept) and wait until it is Ready and schedulable."""
    started = time.monotonic()
    steps.ensure_apt_packages(APT_PACKAGES)
    NODE.mkdir(parents=True, exist_ok=True)
    host = nodehost.record(HOST_STATE)
    nports = node_ports()
    ensure_bridge()
    nodehost.write_sysctl("net/ipv4/ip_forward", "1")
    start_containerd()
    images.import_into_node(ctr, [images.PAUSE])
    client = api(ports)
    api_objects(client, ports["apiserver"])
    say("starting kube-scheduler, kubelet, kube-proxy, cluster DNS and the API forwarder")
    start_node_processes(ports, nports, admin)
    wait_for("wait for the node to be Ready", lambda: node_ready(client), 180, "kubelet")
    wait_for("wait for kube-proxy", lambda: proxy_healthy(nports), 60, "kube-proxy")
    nodehost.restore_transient_sysctls(host)
    say(f"node {NODE_NAME} Ready ({time.monotonic() - started:.1f} s); pods use {POD_SUBNET}")


def proxy_healthy(nports: dict[str, int]) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{nports['proxy_healthz']}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# ------------------------------------------------------------------------------------------- down


def delete_pods(client: Api) -> None:
    """Delete every pod through the API and wait until the kubelet has stopped their containers."""
    try:
        namespaces = [n["metadata"]["name"] for n in client.get("/api/v1/namespaces")["items"]]
        for ns in namespaces:
            client.request("DELETE", f"/api/v1/namespaces/{ns}/pods", {"gracePeriodSeconds": 0})
    except ApiError as exc:
        say(f"could not delete pods through the API ({exc}); stopping containers directly")
        return
    if steps.running("kubelet") and steps.running("containerd"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and running_tasks():
            time.sleep(0.5)


def tasks(status: str = "") -> list[str]:
    """IDs of containerd's tasks (only those in ``status``, e.g. RUNNING, when given)."""
    lines = ctr("tasks", "list", check=False).stdout.splitlines()[1:]
    return [p[0] for p in (line.split() for line in lines) if p and (not status or p[-1] == status)]


def running_tasks() -> list[str]:
    return tasks("RUNNING")


def remove_containers() -> None:
    """Kill and remove what containerd still holds (pods the kubelet did not stop in time)."""
    for task in running_tasks():
        ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and running_tasks():
        time.sleep(0.2)
    for task in tasks():
        ctr("tasks", "delete", "--force", task, check=False)
    for container in ctr("containers", "list", "--quiet", check=False).stdout.split():
        ctr("containers", "delete", container, check=False)


def down() -> None:
    """Stop the node by pid and put the host back as it was; imported images stay cached."""
    started = time.monotonic()
    steps.stop_process("kube-controller-manager")  # no controller may recreate the pods being deleted
    ports = cp.load_config()
    if steps.read_pid("kube-apiserver"):
        delete_pods(api(ports))
    for name in ("kube-proxy", "kubelet", "kube-scheduler", "cluster-dns", "apiserver-forward"):
        steps.stop_process(name)
    if steps.read_pid("kube-apiserver"):  # the next start waits for a fresh registration, not a stale status
        with contextlib.suppress(ApiError):
            api(ports).request("DELETE", f"/api/v1/nodes/{NODE_NAME}")
    if steps.read_pid("containerd"):
        remove_containers()
    steps.stop_process("containerd", timeout=30)
    unmounted = nodehost.unmount_under([NODE])
    nodehost.restore(HOST_STATE)
    for transient in ("kubelet", "kubelet-pki", "containerd/state", "runc", "ipam"):
        shutil.rmtree(NODE / transient, ignore_errors=True)
    say(
        f"stopped and cleaned ({unmounted} mounts, iptables chains, bridge, sysctls; "
        f"{time.monotonic() - started:.1f} s)"
    )


def status() -> bool:
    ok = True
    for name in PROCESSES:
        pid = steps.read_pid(name)
        ok = ok and pid is not None
        print(f"node {name}: {f'running (pid {pid})' if pid else 'stopped'}")
    return ok
