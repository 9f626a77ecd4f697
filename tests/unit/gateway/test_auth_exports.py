"""The auth modules' public names are what the proxy, the gateway, the reconcilers and the tests import:
each module's ``__all__`` is checked against the imports found in the source tree, not restated here."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from types import ModuleType

import pytest

import api.auth_config
import gateway.auth.inbound
import gateway.auth.outbound

ROOT = Path(__file__).resolve().parents[3]


@functools.cache
def _imports() -> dict[str, set[str]]:
    """Per module, every name some module of the project imports with ``from <module> import ...``."""
    names: dict[str, set[str]] = {}
    for folder in ("api", "controller", "gateway", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
                    names.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", [api.auth_config, gateway.auth.inbound, gateway.auth.outbound])
def test_every_imported_name_is_exported_and_every_export_exists(module: ModuleType) -> None:
    exported = set(module.__all__)
    imported = _imports().get(module.__name__, set())
    assert imported, f"nothing imports {module.__name__}: the scan is broken"
    assert imported <= exported, f"imported but not in __all__: {sorted(imported - exported)}"
    assert [name for name in exported if not hasattr(module, name)] == []


def test_inbound_state_keys() -> None:
    assert gateway.auth.inbound.CLAIMS_STATE_KEY == "mcp_auth_claims"
    assert gateway.auth.inbound.IDENTITY_STATE_KEY == "mcp_auth_identity"
    assert gateway.auth.inbound.TOKEN_STATE_KEY == "mcp_auth_token"
