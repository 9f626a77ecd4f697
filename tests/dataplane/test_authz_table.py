"""Cedar authorization end to end: a table of principals, policies and requests, through the proxy's fast
path, its SDK path, the remote proxy (``mcp-operator proxy`` in its own process with the configuration the
operator renders for an MCPRemoteProxy, dialling the MCP server over HTTP) and the virtual gateway (its
fast path and its SDK path), in both protocol eras, with real JWTs from a real JWKS and a real MCP server
behind.

For every case: the tools listed are exactly the expected ones; each listed tool can be called, each
unlisted one answers exactly as a tool that does not exist (403 Unauthorized); prompts and resources
likewise; every decision leaves an audit record naming the principal, the action, the item, the backend
and the request id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from gateway.observability import AUDIT_LOGGER
from tests.support.authz import PATHS, SERVER, TOOLS, Front, Path, front
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

READ_ONLY = (
    'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource) '
    "when { resource has readOnlyHint && resource.readOnlyHint };"
)
EVERYTHING = "permit(principal, action, resource);"
NO_DESTRUCTIVE = (
    'forbid(principal, action == Action::"call_tool", resource) '
    "when { resource has destructiveHint && resource.destructiveHint };"
)
STAFF = json.dumps(
    [
        {
            "uid": {"type": "THVGroup", "id": "eng"},
            "attrs": {},
            "parents": [{"type": "THVGroup", "id": "staff"}],
        }
    ]
)

SETS: dict[str, dict[str, Any]] = {
    "read-only-for-readers": {"policies": [READ_ONLY]},
    "one-tool-one-user": {
        "policies": ['permit(principal == Client::"alice", action, resource == Tool::"echo");']
    },
    "no-destructive": {"policies": [EVERYTHING, NO_DESTRUCTIVE]},
    "email-domain": {
        "policies": [
            'permit(principal, action == Action::"call_tool", resource) '
            'when { principal.claim_email like "*@example.com" };'
        ]
    },
    "server-scope": {"policies": [f'permit(principal, action, resource in MCP::"{SERVER}");']},
    "group-hierarchy": {
        "policies": ['permit(principal in THVGroup::"staff", action, resource == Tool::"echo");'],
        "entitiesJson": STAFF,
    },
    "custom-group-claim": {"policies": [READ_ONLY], "groupClaimName": "https://example.com/groups"},
    "forbid-one-user": {
        "policies": [EVERYTHING, 'forbid(principal == Client::"mallory", action, resource);']
    },
    "prompts-and-resources": {
        "policies": [
            'permit(principal in THVGroup::"writers", '
            'action in [Action::"get_prompt", Action::"read_resource"], resource);'
        ]
    },
    "anonymous-echo": {"policies": ['permit(principal is Anonymous, action, resource == Tool::"echo");']},
    "anonymous-read-only": {"policies": [READ_ONLY]},
}
ANONYMOUS_SETS = {"anonymous-echo", "anonymous-read-only"}
ALL = set(TOOLS)


@dataclass(frozen=True)
class Case:
    name: str
    policy_set: str
    claims: dict[str, Any] | None
    """The token's claims over the issuer's defaults (sub alice); None: no token (an anonymous front)."""
    tools: set[str]
    """Tools the principal sees and may call."""
    other: bool = False
    """Whether the principal may get the prompt and read the resource."""
    reason: str = ""
    """Part of the audit reason of a denied call (the clear reason the issue asks for)."""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("reader", "read-only-for-readers", {"groups": ["readers"]}, {"read_file"}),
    Case("no-groups", "read-only-for-readers", {}, set()),
    Case("writer-is-not-reader", "read-only-for-readers", {"groups": ["writers"]}, set()),
    Case(
        "reader-by-roles-claim", "read-only-for-readers", {"sub": "dave", "roles": ["readers"]}, {"read_file"}
    ),
    Case("the-one-user", "one-tool-one-user", {}, {"echo"}),
    Case("another-user", "one-tool-one-user", {"sub": "bob"}, set()),
    Case("similar-name", "one-tool-one-user", {"sub": "alice2"}, set()),
    Case("everyone-but-destructive", "no-destructive", {}, ALL - {"delete_file"}, other=True),
    Case(
        "readers-too",
        "no-destructive",
        {"sub": "bob", "groups": ["readers"]},
        ALL - {"delete_file"},
        other=True,
    ),
    Case("domain-member", "email-domain", {"email": "alice@example.com"}, ALL),
    Case("other-domain", "email-domain", {"email": "eve@evil.example"}, set()),
    Case("claim-missing", "email-domain", {}, set(), reason="claim_email"),
    Case("server-member", "server-scope", {}, ALL, other=True),
    Case("child-group", "group-hierarchy", {"groups": ["eng"]}, {"echo"}),
    Case("parent-group", "group-hierarchy", {"groups": ["staff"]}, {"echo"}),
    Case("unrelated-group", "group-hierarchy", {"groups": ["ops"]}, set()),
    Case("custom-claim", "custom-group-claim", {"https://example.com/groups": ["readers"]}, {"read_file"}),
    Case("default-claim-ignored", "custom-group-claim", {"groups": ["readers"]}, set()),
    Case("forbidden-user", "forbid-one-user", {"sub": "mallory"}, set(), reason="forbidden by policies[1]"),
    Case("not-forbidden", "forbid-one-user", {"sub": "bob"}, ALL, other=True),
    Case("no-sub", "forbid-one-user", {"sub": None}, set(), reason="no sub claim"),
    Case("writer-prompts", "prompts-and-resources", {"groups": ["writers"]}, set(), other=True),
    Case("reader-no-prompts", "prompts-and-resources", {"groups": ["readers"]}, set()),
    Case("anonymous-allowed", "anonymous-echo", None, {"echo"}),
    Case("anonymous-denied", "anonymous-read-only", None, set()),
]
ARGUMENTS = {"read_file": {"path": "/x"}, "delete_file": {"path": "/x"}, "echo": {"text": "hi"}}
ARGUMENTS["deploy"] = {"env": "prod"}
MODES = ("auto", "legacy")  # 2026-07-28 requests, 2025-11-25 sessions


def test_the_table_has_at_least_20_cases_over_every_policy_set() -> None:
    assert len(CASES) >= 20
    assert {c.policy_set for c in CASES} == set(SETS)


@pytest.fixture
def audits(caplog: pytest.LogCaptureFixture, structured_logs: None) -> Iterator[list[dict[str, Any]]]:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    records: list[dict[str, Any]] = []
    yield records


async def _denial(client: Client, call: Any) -> tuple[int, str]:
    with pytest.raises(MCPError) as raised:
        await call()
    return raised.value.error.code, raised.value.error.message


async def _check_case(client: Client, case: Case) -> None:
    listed = {t.name for t in (await client.list_tools()).tools}
    assert listed == case.tools, case.name
    missing = await _denial(client, lambda: client.call_tool("no_such_tool", {}))
    assert missing == (403, "Unauthorized")
    for tool in TOOLS:
        if tool in case.tools:
            result = await client.call_tool(tool, ARGUMENTS[tool])
            assert not result.is_error, (case.name, tool)
        else:  # hidden: indistinguishable from a tool that does not exist
            assert await _denial(client, lambda t=tool: client.call_tool(t, ARGUMENTS[t])) == missing
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert prompts == ({"greeting"} if case.other else set()), case.name
    assert resources == ({"file:///notes.txt"} if case.other else set()), case.name
    if case.other:
        assert (await client.get_prompt("greeting", {"name": "x"})).messages
        assert (await client.read_resource("file:///notes.txt")).contents
    else:
        assert await _denial(client, lambda: client.get_prompt("greeting", {"name": "x"})) == missing
        assert await _denial(client, lambda: client.read_resource("file:///notes.txt")) == missing
    if not case.other:  # (a principal allowed every prompt name gets the backend's own "unknown prompt")
        assert await _denial(client, lambda: client.get_prompt("no_such_prompt", {})) == missing


def _check_audit(records: list[dict[str, Any]], case: Case) -> None:
    """One record per call decided (allowed and denied), naming who, what, where and the request."""
    decided = [
        r for r in records if r.get("event") == "authz" and str(r.get("resource", "")).startswith("Tool::")
    ]
    by_tool = {r["resource"]: r for r in decided}
    principal = 'Anonymous::"anonymous"' if case.claims is None else None
    for tool in TOOLS:
        record = by_tool[f'Tool::"{tool}"']
        assert record["action"] == 'Action::"call_tool"'
        assert record["backend"] == SERVER
        assert record["requestId"] is not None
        assert record["decision"] == ("allow" if tool in case.tools else "deny")
        if principal is not None:
            assert record["principal"] == principal
        if tool in case.tools:
            assert record["policies"], record
        elif case.reason:
            assert case.reason in record["reason"], record
    assert not any("eyJ" in str(r) for r in records), "a token reached the audit log"


def _group(path: Path) -> list[tuple[Path, str]]:
    return [(path, name) for name in SETS]


@pytest.mark.parametrize(("path", "policy_set"), [p for path in PATHS for p in _group(path)])
async def test_cases(
    path: Path, policy_set: str, caplog: pytest.LogCaptureFixture, structured_logs: None
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    cases = [c for c in CASES if c.policy_set == policy_set]
    async with front(path, SETS[policy_set], oidc=policy_set not in ANONYMOUS_SETS) as f:
        for case in cases:
            for mode in MODES:
                caplog.clear()
                start = f.log_size()
                await _run(f, case, mode)
                _check_audit(await _audit_records(f, caplog, start), case)
        if path in ("fast", "remote", "gateway"):  # fast paths (the remote proxy's serves 2026-07-28 ones)
            assert 'mcp_proxy_fast_path_requests_total{route="fast"}' in await f.metrics()
        assert 'mcp_authz_decisions_total{action="call_tool",outcome="deny"}' in await f.metrics()


async def _audit_records(f: Front, caplog: pytest.LogCaptureFixture, start: int) -> list[dict[str, Any]]:
    """The audit records of one case: this process's, or those the remote proxy wrote to its log after
    byte ``start``."""
    if f.log is None:
        return [r.msg for r in caplog.records if r.name == AUDIT_LOGGER and isinstance(r.msg, dict)]

    async def every_call() -> list[dict[str, Any]] | None:  # written before each answer, read from a file
        records = f.logged(start)
        decided = {r.get("resource") for r in records if r.get("event") == "authz"}
        return records if {f'Tool::"{tool}"' for tool in TOOLS} <= decided else None

    found: list[dict[str, Any]] = await eventually(every_call, what="the remote proxy's audit records")
    return found


async def _run(f: Front, case: Case, mode: str) -> None:
    token = None if case.claims is None else f.issuer.mint(**case.claims)
    async with f.client(token, mode) as client:
        await _check_case(client, case)


@pytest.mark.parametrize("path", PATHS)
async def test_a_batch_cannot_carry_a_call_past_the_policies(path: Path) -> None:
    """JSON-RPC batches are refused as a whole (2025-11-25 removed them), so no denied call rides along."""
    async with front(path, SETS["one-tool-one-user"]) as f:
        denied = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "delete_file", "arguments": {"path": "/x"}},
        }
        allowed = {**denied, "id": 2, "params": {"name": "echo", "arguments": {"text": "x"}}}
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": "2026-07-28",
            "authorization": f"Bearer {f.issuer.mint()}",
        }
        response = await f.http.post(f"{f.url}/mcp", content=json.dumps([denied, allowed]), headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32600
        assert "deleted" not in response.text
