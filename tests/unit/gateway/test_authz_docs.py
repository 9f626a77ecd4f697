"""The worked policies of docs/auth.md ("Worked policies"), read from the file and checked as written: each
MCPServer fragment is accepted, and decides as its text says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.authz import cedar_config
from api.base import GROUP_VERSION
from api.mcpserver import MCPServer
from api.validation import parse_and_validate
from gateway.authz.engine import PolicyEngine
from gateway.authz.entities import Item, arguments_attributes, principal_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "auth.md"
READ = Item("tool", "read_file", "files", (("readOnlyHint", True),))
DELETE = Item("tool", "delete_file", "files", (("destructiveHint", True),))
DEPLOY = Item("tool", "deploy", "files")
ECHO = Item("tool", "echo", "files")


def examples() -> dict[str, dict[str, Any]]:
    blocks = re.findall(r"```yaml\n# example: ([\w-]+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return {name: yaml.safe_load(body) for name, body in blocks}


def _engine(name: str) -> PolicyEngine:
    fragment = examples()[name]
    obj = {"apiVersion": GROUP_VERSION, "kind": "MCPServer", "metadata": {"name": "files"}}
    server, problems = parse_and_validate({**obj, "spec": {"image": "i", **fragment}})
    assert problems == [] and isinstance(server, MCPServer)
    assert server.spec.authz_config is not None
    config = cedar_config(server.spec.authz_config)
    assert config is not None
    return PolicyEngine(config)


def _allowed(
    engine: PolicyEngine, item: Item, arguments: dict[str, Any] | None = None, **claims: Any
) -> bool:
    who = principal_for(claims, engine.config, engine.compiled.attributes)
    return engine.decide(who, item, arguments_attributes(arguments or {}, engine.compiled.attributes)).allowed


def test_the_doc_has_the_three_examples() -> None:
    assert set(examples()) == {"read-only-for-readers", "one-tool-for-one-user", "no-destructive-tools"}


def test_read_only_tools_for_a_group() -> None:
    engine = _engine("read-only-for-readers")
    assert _allowed(engine, READ, sub="bob", groups=["readers"])
    assert not _allowed(engine, DELETE, sub="bob", groups=["readers"])
    assert not _allowed(engine, ECHO, sub="bob", groups=["readers"])
    assert not _allowed(engine, READ, sub="carol", groups=["writers"])


@pytest.mark.parametrize(
    ("sub", "arguments", "allowed"),
    [
        ("alice", None, True),  # listed
        ("alice", {"env": "staging"}, True),
        ("alice", {"env": "prod"}, False),
        ("bob", {"env": "staging"}, False),
    ],
)
def test_one_tool_for_one_user(sub: str, arguments: dict[str, Any] | None, allowed: bool) -> None:
    engine = _engine("one-tool-for-one-user")
    assert _allowed(engine, DEPLOY, arguments, sub=sub) is allowed
    assert not _allowed(engine, ECHO, sub="alice")


def test_deny_destructive_tools() -> None:
    engine = _engine("no-destructive-tools")
    assert _allowed(engine, READ, sub="bob")
    assert _allowed(engine, ECHO, sub="bob")
    who = principal_for({"sub": "bob"}, engine.config, engine.compiled.attributes)
    decision = engine.decide(who, DELETE, {})
    assert not decision.allowed
    assert decision.reason == "forbidden by no-destructive-tools"
    assert not engine.decide(principal_for(None, engine.config, engine.compiled.attributes), ECHO, {}).allowed
