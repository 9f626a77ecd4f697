"""What the local node changes on the host, recorded before it starts and undone when it stops.

kubelet, kube-proxy, containerd and the CNI plugins change host sysctls, create iptables chains, mount
network namespaces and create a few host paths they cannot be told to put elsewhere. The state before
the node's first start is kept in ``host.json`` in the node's directory; ``restore`` puts back what
the node changed and removes only what did not exist before.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

BRIDGE = "mcp0"
TRANSIENT_SYSCTLS = (
    # kubelet and kube-proxy set these when they start; the node does not need them afterwards.
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "net/ipv4/conf/all/route_localnet",
)
NODE_SYSCTLS = ("net/ipv4/ip_forward",)  # needed while pods run: restored on down
FIXED_HOST_PATHS = (
    # Paths kubelet 1.20, containerd 1.6 and libcni use whatever they are configured with.
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/run/containerd",
    "/run/netns",
)
CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle")
IPTABLES = ("iptables", "ip6tables")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class HostState:
    """The host as it was before the node first started."""

    sysctls: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)
    netns: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)


def read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):  # a read-only or absent sysctl was not changed by the node either
        Path("/proc/sys", name).write_text(value + "\n")


def chains(binary: str, table: str) -> list[str]:
    """The chain names of one iptables table (empty if the tool or table is not there)."""
    try:
        out = subprocess.run(
            [binary, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        return []
    return [line.split()[1] for line in out.splitlines() if line.startswith(("-N ", "-P "))]


def netns_names() -> list[str]:
    path = Path("/run/netns")
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def kubepods_cgroups() -> list[str]:
    return sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods*"))


def record(path: Path) -> HostState:
    """The host state before the node's first start (kept across restarts until ``restore``)."""
    if path.exists():
        return HostState(**json.loads(path.read_text()))
    state = HostState(
        sysctls={
            name: value
            for name in (*TRANSIENT_SYSCTLS, *NODE_SYSCTLS)
            if (value := read_sysctl(name)) is not None
        },
        paths=[p for p in FIXED_HOST_PATHS if Path(p).exists()],
        chains={f"{b}/{t}": chains(b, t) for b in IPTABLES for t in TABLES},
        netns=netns_names(),
        cgroups=kubepods_cgroups(),
    )
    path.write_text(json.dumps(asdict(state), indent=2))
    return state


def restore_transient_sysctls(state: HostState) -> None:
    for name in TRANSIENT_SYSCTLS:
        if name in state.sysctls and read_sysctl(name) != state.sysctls[name]:
            write_sysctl(name, state.sysctls[name])


def unmount_under(roots: list[Path]) -> int:
    """Unmount every mount point under ``roots`` (deepest first); the number unmounted."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(root) or point.startswith(f"{root}/") for root in roots):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return len(points)


def remove_chains(state: HostState) -> int:
    """Delete the KUBE-*/CNI-* chains (and the jumps into them) that did not exist before."""
    removed = 0
    for binary in IPTABLES:
        for table in TABLES:
            before = set(state.chains.get(f"{binary}/{table}", []))
            ours = {c for c in chains(binary, table) if c.startswith(CHAIN_PREFIXES) and c not in before}
            if not ours:
                continue
            rules = subprocess.run(
                [binary, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            for rule in rules:
                parts = shlex.split(rule)  # comments are quoted and hold spaces
                if parts[:1] == ["-A"] and parts[1] not in ours and any(p in ours for p in parts):
                    subprocess.run([binary, "-w", "-t", table, "-D", *parts[1:]], check=False)
            for chain in ours:
                subprocess.run([binary, "-w", "-t", table, "-F", chain], check=False)
            for chain in ours:
                subprocess.run([binary, "-w", "-t", table, "-X", chain], check=False)
            removed += len(ours)
    return removed


def remove_netns(state: HostState) -> None:
    for name in set(netns_names()) - set(state.netns):
        path = Path("/run/netns") / name
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        path.unlink(missing_ok=True)


def remove_cgroups(state: HostState) -> None:
    """rmdir the kubepods cgroups kubelet created (only empty ones can go; deepest first)."""
    for top in set(kubepods_cgroups()) - set(state.cgroups):
        dirs = sorted((p for p in Path(top).rglob("*") if p.is_dir()), key=lambda p: len(p.parts))
        for directory in [*reversed(dirs), Path(top)]:
            with contextlib.suppress(OSError):
                directory.rmdir()


def remove_paths(state: HostState) -> None:
    for path in FIXED_HOST_PATHS:
        if path not in state.paths and Path(path).exists() and not Path(path).is_symlink():
            subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


def restore(path: Path) -> None:
    """Undo everything the node changed on the host, then forget the recorded state."""
    if not path.exists():
        return
    state = HostState(**json.loads(path.read_text()))
    remove_chains(state)
    remove_netns(state)
    remove_cgroups(state)
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
    remove_paths(state)
    for name, value in state.sysctls.items():
        if read_sysctl(name) != value:
            write_sysctl(name, value)
    path.unlink()
