"""Shared plumbing of hack/cluster: cache and instance paths, named steps that stop with one line,
Debian packages, and the instance's processes recorded by pid (standard library only)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

CACHE = Path(os.environ.get("MCP_OPERATOR_CACHE", Path.home() / ".cache" / "mcp-operator"))
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


def ensure_apt_packages(packages: dict[str, str]) -> None:
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
