"""hack/bench_authz: what Cedar authorization adds, with 100 policies (docs/benchmarks.md, "Authorization").

- decision: the request policy's authorization hook for one ``tools/call`` (principal, tool, decision,
  metrics; audit off), p50 over calls by 50 principals cycling over 200 tools, steady state (decisions
  cached) and first decisions (a fresh engine for every sample);
- list: filtering a ``tools/list`` result of 200 tools for one principal, steady state and first listing;
- throughput: two proxy processes in front of a Node stdio server (``@modelcontextprotocol/server-
  everything``, not the bottleneck), authorization off and on, and likewise two gateway processes in front
  of that server over streamable HTTP; interleaved rounds in one run, the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from api.authz_config import CedarConfig
from api.proxy_config import AuditConfig
from gateway.authz.enforce import Authorization
from gateway.observability import Auditor
from gateway.request_policy import RequestPolicy
from hack.benchmarks.authz_report import BEGIN, END, Results, render
from hack.benchmarks.common import free_port, machine, write_section
from hack.benchmarks.proxy_bench import EVERYTHING_CALL, NPM_BIN, SERVING, process, throughput_rounds

POLICIES = 100
TOOLS = 200
PRINCIPALS = 50


def policy_set(count: int = POLICIES) -> CedarConfig:
    """``count`` policies as a team would write them: per group grants of named tools, grants by
    annotation, a claim condition, a forbid of destructive tools, and the anonymous ``echo`` grant the
    throughput run calls."""
    policies = [
        f'permit(principal in THVGroup::"team{i}", action == Action::"call_tool", '
        f'resource == Tool::"tool_{i}");'
        for i in range(count - 4)
    ]
    policies += [
        'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource) '
        "when { resource has readOnlyHint && resource.readOnlyHint };",
        'permit(principal, action == Action::"call_tool", resource) '
        'when { principal.claim_email like "*@example.com" };',
        'forbid(principal, action == Action::"call_tool", resource) '
        "when { resource has destructiveHint && resource.destructiveHint };",
        'permit(principal is Anonymous, action == Action::"call_tool", resource == Tool::"echo");',
    ]
    return CedarConfig(policies=tuple(policies))


def tool_list() -> list[dict[str, Any]]:
    hints: tuple[dict[str, bool], ...] = ({"readOnlyHint": True}, {"destructiveHint": True}, {})
    return [
        {"name": f"tool_{i}", "inputSchema": {"type": "object"}, "annotations": hints[i % 3]}
        for i in range(TOOLS)
    ]


@dataclass(frozen=True)
class Token:
    """What the inbound middleware records of a validated token (``raw`` keys the principal cache)."""

    raw: str


def scope(user: int) -> dict[str, Any]:
    """A front request's scope after inbound auth, as the request policy reads it."""
    claims: dict[str, Any] = {
        "sub": f"user{user}",
        "groups": [f"team{user}", "readers" if user % 2 else "writers"],
    }
    if user % 5 == 0:
        claims["email"] = f"user{user}@example.com"
    return {"state": {"mcp_auth_claims": claims, "mcp_auth_token": Token(f"token-of-user{user}")}}


def _authorization() -> Authorization:
    return Authorization(policy_set(), "bench", auditor=Auditor(AuditConfig(enabled=False)))


def _median_us(sample: Callable[[int], float], count: int) -> float:
    return statistics.median(sample(i) for i in range(count)) * 1e6


def decision_p50(count: int) -> tuple[float, float]:
    """p50 seconds of the hook for one call: steady state, then first decisions."""
    authz, tools = _authorization(), tool_list()

    def hook(a: Authorization, i: int) -> float:
        start = time.perf_counter()
        principal = a.principal(scope(i % PRINCIPALS))
        tool = tools[i % TOOLS]
        with contextlib.suppress(Exception):
            a.check(principal, a.tool(tool["name"], tool), {"path": "/x"})
        return time.perf_counter() - start

    for i in range(PRINCIPALS * TOOLS // 10):
        hook(authz, i)  # warm: the decisions of the steady state
    steady = _median_us(lambda i: hook(authz, i), count)
    first = _median_us(lambda i: hook(_authorization(), i), min(count, 300))
    return steady, first


def list_p50(count: int) -> tuple[float, float]:
    """p50 seconds to filter a 200-tool ``tools/list`` for one principal: steady state, first listing."""
    authz, result = _authorization(), {"tools": tool_list()}

    def filtered(a: Authorization, i: int) -> float:
        principal = a.principal(scope(i % PRINCIPALS))
        start = time.perf_counter()
        a.filter_result(principal, "tools/list", result)
        return time.perf_counter() - start

    for i in range(PRINCIPALS):
        filtered(authz, i)
    steady = _median_us(lambda i: filtered(authz, i), count)
    first = _median_us(lambda i: filtered(_authorization(), i), min(count, 100))
    return steady, first


def request_overhead(count: int) -> tuple[float, float]:
    """p50 seconds of the request policy's whole ``tools/call`` handling (backend answer immediate),
    authorization off and on: what authorization adds to every call, without the machine's noise."""

    async def forward(params: dict[str, Any] | None) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "x"}]}

    async def tools() -> list[dict[str, Any]]:
        return [{"name": "echo", "inputSchema": {"type": "object"}}]

    async def measure() -> tuple[float, float]:
        off = RequestPolicy(auditor=Auditor(AuditConfig(enabled=False)))
        on = RequestPolicy(auditor=off.auditor, authz=_authorization(), list_tools=tools)
        params = {"name": "echo", "arguments": {"message": "x"}}
        medians = []
        for policy in (off, on):
            samples = []
            for i in range(count + 200):
                start = time.perf_counter()
                await policy.request("tools/call", params, "anonymous", forward, scope=None)
                if i >= 200:  # after a warm-up
                    samples.append(time.perf_counter() - start)
            medians.append(statistics.median(samples) * 1e6)
        return medians[0], medians[1]

    return anyio.run(measure)


def throughput(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """calls/s with authorization off and on, same run, interleaved rounds: two proxies in front of a
    Node stdio server, and two gateways (``incomingAuth`` anonymous, with and without ``authz``) in front
    of one Node server over streamable HTTP (one backend, names kept as the server gives them)."""
    everything = str(NPM_BIN / "mcp-server-everything")
    env = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cli = [sys.executable, "-m", "controller.cli"]
    authz = policy_set().model_dump(by_alias=True)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        targets, pids = {}, {}

        def serve(name: str, command: str, config: dict[str, Any]) -> None:
            port = free_port()
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(config))
            argv = [*cli, command, "--log-level", "warning", "--port", str(port), "--config", str(path)]
            pids[name] = stack.enter_context(
                process(argv, f"http://127.0.0.1:{port}/readyz", (200,), env=env)
            )
            targets[name] = f"http://127.0.0.1:{port}/mcp"

        backend_port = free_port()
        stack.enter_context(
            process(
                [everything, "streamableHttp"],
                f"http://127.0.0.1:{backend_port}/mcp",
                SERVING,
                env={**env, "PORT": str(backend_port)},
            )
        )
        for name, on in (("off", False), ("on", True)):
            proxy = {"name": "bench", "backend": {"type": "stdio", "command": [everything]}}
            serve(f"proxy {name}", "proxy", {**proxy, "authz": authz} if on else proxy)
            incoming: dict[str, Any] = {"type": "anonymous", **({"authz": authz} if on else {})}
            gateway = {
                "name": "bench",
                "backends": [{"name": "bench", "url": f"http://127.0.0.1:{backend_port}/mcp"}],
                "aggregation": {
                    "conflictResolution": "priority",
                    "conflictResolutionConfig": {"priorityOrder": ["bench"]},
                },
                "incomingAuth": incoming,
            }
            serve(f"gateway {name}", "vmcp", gateway)
        return throughput_rounds(targets, pids, args, EVERYTHING_CALL, b"Echo: x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="samples of the in-process timings")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=600, help="calls per connection, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved off/on throughput rounds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    print("timing decisions ...", file=sys.stderr, flush=True)
    steady, first = decision_p50(args.samples)
    print("timing list filtering ...", file=sys.stderr, flush=True)
    list_steady, list_first = list_p50(min(args.samples, 500))
    off_us, on_us = request_overhead(args.samples)
    print("measuring throughput off / on ...", file=sys.stderr, flush=True)
    rates = throughput(args)
    results = Results(
        steady,
        first,
        list_steady,
        list_first,
        rates["proxy off"]["rps"],
        rates["proxy on"]["rps"],
        off_us,
        on_us,
        rates["gateway off"]["rps"],
        rates["gateway on"]["rps"],
        {name: rate["own_us"] for name, rate in rates.items()},
    )
    when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}"
    section = render(results, args, when)
    print(section)
    if not args.no_write:
        write_section(BEGIN, END, section.rstrip("\n"))
    return 0
