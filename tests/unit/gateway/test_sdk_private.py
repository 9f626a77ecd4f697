"""The SDK's private names the data plane relies on: listed in one place, all present in the pinned SDK."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from gateway import sdk_private

GATEWAY = Path(sdk_private.__file__).parent


def test_the_private_names_used_are_these() -> None:
    # A change here is a change of what an SDK upgrade can break: review the fallbacks in
    # gateway/sdk_private.py along with it.
    by_owner: dict[str, set[str]] = {}
    for name in sdk_private.PRIVATE_NAMES:
        owner, attribute = name.rsplit(".", 1)
        by_owner.setdefault(owner.rsplit(".", 1)[-1], set()).add(attribute)
    assert by_owner == {
        "StreamWriterWrapper": {"_stream"},
        "_probe": {"negotiate_auto"},
        "stdio": {"_create_platform_compatible_process", "_drain_stdout", "_stop_server_process"},
        "ServerSession": {"_connection"},
        "StreamableHTTPServerTransport": {"_idle_timeout", "_requests_in_flight"},
        "StreamableHTTPSessionManager": {
            "_discard_session",
            "_lifespan_state",
            "_server_instances",
            "_session_owners",
            "_task_group",
        },
    }
    assert len(sdk_private.PRIVATE_NAMES) == 13


def test_the_pinned_sdk_has_every_private_name() -> None:
    status = sdk_private.probe()
    assert status.missing == ()
    assert status.fast_path
    assert sdk_private.STATUS.fast_path


def test_no_other_gateway_module_imports_a_private_sdk_name() -> None:
    private_import = re.compile(r"^\s*from (mcp|anyio)\S* import .*\b_[a-z]|^\s*from (mcp|anyio)\S*\._[a-z]")
    offenders = [
        f"{path.relative_to(GATEWAY)}:{number}"
        for path in GATEWAY.rglob("*.py")
        if path.name != "sdk_private.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private_import.search(line)
    ]
    assert offenders == []


def test_a_missing_name_turns_the_fast_path_off_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mcp.client.stdio  # noqa: PLC0415

    monkeypatch.delattr(mcp.client.stdio, "_drain_stdout")
    with caplog.at_level(logging.WARNING, logger="mcp_operator.proxy"):
        status = sdk_private.probe()
    assert status.missing == ("mcp.client.stdio._drain_stdout",)
    assert not status.fast_path
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "fast path off" in warnings[0] and "mcp.client.stdio._drain_stdout" in warnings[0]
    monkeypatch.setattr(sdk_private, "STATUS", status)
    assert sdk_private.stdio_helpers() is None  # stdio backends run under the SDK's stdio_client


def test_a_changed_constructor_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp.server import streamable_http  # noqa: PLC0415

    original = streamable_http.StreamableHTTPServerTransport.__init__

    def renamed(self: object, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        del self._requests_in_flight  # type: ignore[attr-defined]

    monkeypatch.setattr(streamable_http.StreamableHTTPServerTransport, "__init__", renamed)
    status = sdk_private.probe()
    assert status.missing == ("mcp.server.streamable_http.StreamableHTTPServerTransport._requests_in_flight",)
