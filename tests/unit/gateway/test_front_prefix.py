"""The message endpoint the front announces on ``/sse``: ToolHive's ``endpointPrefix`` and
``trustProxyHeaders`` (the path a legacy SSE client posts to behind a path-routing ingress)."""

from __future__ import annotations

import pytest

from gateway.front import announced_prefix


def _scope(prefix: str | None) -> dict[str, object]:
    headers = [(b"host", b"proxy:8080")]
    if prefix is not None:
        headers.append((b"x-forwarded-prefix", prefix.encode()))
    return {"type": "http", "path": "/sse", "headers": headers}


@pytest.mark.parametrize(
    ("configured", "trusted", "forwarded", "expected"),
    [
        ("", False, None, ""),
        ("", False, "/team", ""),  # an untrusted header is ignored: a client cannot choose the path
        ("", True, "/team", "/team"),
        ("", True, None, ""),
        ("/github", False, None, "/github"),
        ("/github", True, "/team", "/github"),  # the configured prefix wins
        ("github/", False, None, "/github"),  # ToolHive adds the leading slash
        ("/a/b/sse", False, None, "/a/b"),  # the stream's own path is not part of the prefix
        ("", True, "/team/sse", "/team"),
        ("/", False, None, ""),
    ],
)
def test_announced_prefix_follows_toolhives_priority(
    configured: str, trusted: bool, forwarded: str | None, expected: str
) -> None:
    assert announced_prefix(_scope(forwarded), configured, trusted) == expected
