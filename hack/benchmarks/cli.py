"""``hack/bench`` (``make bench``): run the benchmarks; each updates its own section of docs/benchmarks.md.

    hack/bench [operator] [proxy] [vmcp] [pods] [replicas] [authz]
                  which ones (default: the first three, operator first; pods needs the local node:
                  hack/cluster up --node; replicas: Redis sessions and rate limits, needs redis-server;
                  authz: Cedar authorization)
    --n N         MCPServers per operator phase (default 1000)
    --repeats R   operator repeats; medians are reported (default 2)
    --steady S    operator steady window in seconds (default 300)
    --no-write    print the tables only, leave docs/benchmarks.md alone

The operator benchmark starts its own control plane instance (MCP_OPERATOR_CLUSTER, default "bench")
unless --kubeconfig is passed through after `--`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

from hack.benchmarks.common import ROOT

BENCHMARKS = ("operator", "proxy", "vmcp", "pods", "replicas", "authz")
DEFAULT = ("operator", "proxy", "vmcp")  # pods brings up a real node, replicas a Redis: asked for by name
OPERATOR_FLAGS = ("--n", "--repeats", "--steady")


@dataclass
class Plan:
    """Which benchmarks run, and the flags passed on to the operator benchmark."""

    which: list[str] = field(default_factory=list)
    operator_args: list[str] = field(default_factory=list)
    write: bool = True


class UsageError(Exception):
    """An argument hack/bench does not know."""


def parse(argv: list[str]) -> Plan:
    plan = Plan()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in BENCHMARKS:
            plan.which.append(arg)
        elif arg in OPERATOR_FLAGS and args:
            plan.operator_args += [arg, args.pop(0)]
        elif arg == "--no-write":
            plan.write = False
        elif arg == "--":
            plan.operator_args += args
            break
        else:
            raise UsageError(f"hack/bench: unknown argument '{arg}' (see hack/bench --help)")
    plan.which = plan.which or list(DEFAULT)
    return plan


def commands(plan: Plan) -> list[tuple[str, list[str]]]:
    """(name, argv) of each benchmark to run, in order, with the venv's python."""
    python = str(ROOT / ".venv" / "bin" / "python")
    out = []
    for name in plan.which:
        script = str(ROOT / "hack" / f"bench_{name}")
        if name == "operator":
            argv = [python, script, *plan.operator_args, *(["--write-docs"] if plan.write else [])]
        else:
            argv = [python, script, *([] if plan.write else ["--no-write"])]
        out.append((name, argv))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(__doc__.split("\n\n", 1)[1].rstrip() if __doc__ else "")
        return 0
    try:
        plan = parse(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name, command in commands(plan):
        print(f"== bench {name}", file=sys.stderr, flush=True)
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
