"""What every benchmark shares: ports, process CPU, the machine line and docs/benchmarks.md sections."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (a proxy's stdio backend), from /proc."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for tasks in Path(f"/proc/{pid}/task").iterdir():
            children += [int(child) for child in (tasks / "children").read_text().split()]
    return children


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``a / b / c``."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run_line(packages: tuple[str, ...]) -> str:
    """When and where a run happened, and the versions of ``packages`` it measured."""
    import datetime  # noqa: PLC0415 (only the reports' run line needs it)
    import importlib.metadata  # noqa: PLC0415

    versions = ", ".join(f"{pkg} {importlib.metadata.version(pkg)}" for pkg in packages)
    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load_average()} at the "
        f"end; {versions}"
    )


def machine() -> str:
    """Architecture, CPUs, memory and the load average at the end of a run."""
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {memory}; load average {load_average()} at the end"


def replace_section(current: str, begin: str, end: str, block: str, *, first: bool = False) -> str:
    """``current`` with the text from ``begin`` to ``end`` (both included) replaced by ``block``, which
    starts with ``begin`` and ends with ``end``; when the markers are absent, ``block`` goes right after the
    title line (``first``) or at the end. The other benchmarks' sections are kept as they are."""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    if first:
        title, _, body = current.partition("\n")
        return f"{title}\n\n{block}\n\n{body.lstrip(chr(10))}"
    return current.rstrip("\n") + "\n\n" + block + "\n"


def write_section(begin: str, end: str, block: str, *, first: bool = False) -> None:
    """Replace one benchmark's section of docs/benchmarks.md, re-read right before writing: the other
    benchmarks own the other sections."""
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(replace_section(current, begin, end, block, first=first), encoding="utf-8")


def publish(begin: str, end: str, section: str, *, write: bool) -> int:
    """Print a benchmark's section and, when ``write``, put it into docs/benchmarks.md; the exit code."""
    print(section)
    if write:
        write_section(begin, end, section.rstrip("\n"))
    return 0
