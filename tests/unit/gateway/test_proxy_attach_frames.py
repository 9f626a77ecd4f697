"""The attach websocket's channel framing (binary ``channel.k8s.io`` and text ``base64.channel.k8s.io``)."""

from __future__ import annotations

import base64

import pytest

from api.proxy_config import AttachBackend
from gateway.backends.attach import STDERR, STDIN, STDOUT, attach_url, decode_frame, encode_frame

BINARY = ("v4.channel.k8s.io", "channel.k8s.io", None)
TEXT = ("v4.base64.channel.k8s.io", "base64.channel.k8s.io")


@pytest.mark.parametrize("protocol", BINARY)
def test_binary_frames_prefix_the_channel_byte(protocol: str | None) -> None:
    frame = encode_frame(protocol, STDIN, b'{"jsonrpc":"2.0"}\n')
    assert frame == b'\x00{"jsonrpc":"2.0"}\n'
    assert decode_frame(protocol, b"\x01hello") == (STDOUT, b"hello")


@pytest.mark.parametrize("protocol", TEXT)
def test_base64_frames_are_text_with_an_ascii_channel(protocol: str) -> None:
    payload = b'{"id":1}\n\xff'
    frame = encode_frame(protocol, STDIN, payload)
    assert frame == "0" + base64.b64encode(payload).decode()
    assert decode_frame(protocol, "2" + base64.b64encode(b"oops").decode()) == (STDERR, b"oops")


@pytest.mark.parametrize(
    ("protocol", "data"),
    [
        ("v4.channel.k8s.io", b""),  # empty binary frame
        ("v4.channel.k8s.io", "1aGk="),  # text frame on a binary protocol
        ("v4.base64.channel.k8s.io", ""),
        ("v4.base64.channel.k8s.io", "x aGk="),  # no channel digit
        ("v4.base64.channel.k8s.io", "1***"),  # not base64
    ],
)
def test_undecodable_frames_are_skipped(protocol: str, data: bytes | str) -> None:
    assert decode_frame(protocol, data) is None


def test_attach_url_targets_the_container_with_all_streams() -> None:
    config = AttachBackend(namespace="team-a", pod="github-server-0", api_server="https://10.0.0.1:6443")
    assert attach_url(config) == (
        "wss://10.0.0.1:6443/api/v1/namespaces/team-a/pods/github-server-0/attach"
        "?container=mcp&stdin=true&stdout=true&stderr=true"
    )


def test_attach_url_needs_an_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(RuntimeError, match="apiServer"):
        attach_url(AttachBackend(namespace="a", pod="p"))
