"""The attach backend: an MCP server's stdin/stdout reached through the Kubernetes attach API.

``GET {apiServer}/api/v1/namespaces/{ns}/pods/{pod}/attach?container=C&stdin=true&stdout=true&stderr=true``
upgraded to a websocket. We offer ``v4.channel.k8s.io`` and ``channel.k8s.io`` (binary frames whose
first byte is the channel) and their base64 twins ``v4.base64.channel.k8s.io`` / ``base64.channel.k8s.io``
(text frames: the channel as an ASCII digit, then the payload in base64), and speak whichever the API
server picks. Channels: 0 stdin (we send), 1 stdout, 2 stderr, 3 error (a JSON ``Status`` when the attach
ends). stdout carries newline-delimited JSON-RPC, exactly as a stdio subprocess would; frames may split
or join lines anywhere.

:func:`attach_transport` returns a ``TransportFactory`` (see :mod:`gateway.backends.connection`): each call
opens one websocket, authenticated with the service-account token (re-read on every connect: bound tokens
rotate) and verified against the cluster CA. When the container restarts the websocket closes, the transport's
read stream ends, and ``BackendConnection`` re-attaches with backoff. :func:`open_attach` takes the URL,
headers and SSL context explicitly, so tests can point it at a fake attach websocket server.

An attach that fails says why: a refused handshake raises :class:`AttachRefusedError` carrying the API
server's HTTP status and its ``Status`` reason and message (aiohttp drops the refusal's body, so it is
read again with a plain GET of the same URL: the API server answers it the same way for a missing pod, a
missing permission or a bad token), which ``BackendConnection`` logs; every failure counts in
``mcp_proxy_attach_failures_total{reason}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator
from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

import aiohttp
import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from prometheus_client import Counter

from api.proxy_config import AttachBackend
from gateway.backends.connection import Streams, TransportFactory
from kube.credentials import ca_context, read_token
from kube.service_account import in_cluster_server

__all__ = [
    "ATTACH_FAILURES",
    "CHANNEL_PROTOCOLS",
    "AttachRefusedError",
    "attach_transport",
    "attach_url",
    "decode_frame",
    "encode_frame",
    "open_attach",
]

logger = logging.getLogger("mcp_operator.backend")

CHANNEL_PROTOCOLS = (
    "v4.channel.k8s.io",
    "channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "base64.channel.k8s.io",
)
STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3
_MAX_LINE = 64 * 1024 * 1024
_MAX_REFUSAL_BODY = 64 * 1024

ATTACH_FAILURES = Counter(
    "mcp_proxy_attach_failures",
    "Attaches to the server container that failed, by reason: the API server's Status reason "
    "(Forbidden, NotFound, BadRequest, ...) or the client error's class (ClientConnectorError, ...).",
    ["reason"],
)


class AttachRefusedError(ConnectionError):
    """The API server refused the attach handshake: its HTTP status and its ``Status`` reason/message."""

    def __init__(self, target: str, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"attach to {target} refused by the API server: HTTP {status} {reason}: {message}")


def _is_base64(protocol: str | None) -> bool:
    return protocol is not None and "base64" in protocol


def encode_frame(protocol: str | None, channel: int, payload: bytes) -> bytes | str:
    """One websocket frame for ``channel`` in the negotiated subprotocol (text for base64 ones)."""
    if _is_base64(protocol):
        return str(channel) + base64.b64encode(payload).decode("ascii")
    return bytes([channel]) + payload


def decode_frame(protocol: str | None, data: bytes | str) -> tuple[int, bytes] | None:
    """``(channel, payload)`` of a received frame, or None for an empty or undecodable one."""
    if isinstance(data, str):
        if not _is_base64(protocol) or not data or not data[0].isdigit():
            return None
        try:
            return int(data[0]), base64.b64decode(data[1:], validate=True)
        except binascii.Error:
            logger.warning("attach frame on channel %s is not valid base64", data[0])
            return None
    if not data:
        return None
    return data[0], data[1:]


def attach_url(config: AttachBackend) -> str:
    """The attach endpoint (wss://) for the configured pod and container."""
    base = config.api_server or in_cluster_server(otherwise="set backend.apiServer")
    query = urlencode({"container": config.container, "stdin": "true", "stdout": "true", "stderr": "true"})
    path = f"/api/v1/namespaces/{config.namespace}/pods/{config.pod}/attach?{query}"
    return base.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path


def attach_transport(config: AttachBackend) -> TransportFactory:
    """A transport factory attaching to the configured container."""

    def factory() -> contextlib.AbstractAsyncContextManager[Streams]:
        headers = {"Authorization": f"Bearer {read_token(config.token_file)}"}
        url = attach_url(config)
        return open_attach(
            url, headers=headers, ssl_context=ca_context(config.ca_file) if url.startswith("wss") else None
        )

    return factory


@contextlib.asynccontextmanager
async def open_attach(
    url: str, *, headers: dict[str, str] | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Streams]:
    """Open one attach websocket and expose it as the SDK's (read_stream, write_stream) pair."""
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](64)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](64)
    async with (
        aiohttp.ClientSession() as http,
        _connected(http, url, headers or {}, ssl_context) as ws,
        anyio.create_task_group() as tg,
    ):
        logger.info("attached to %s (protocol %s)", url.split("?", maxsplit=1)[0], ws.protocol)

        protocol = ws.protocol

        async def reader() -> None:
            buffer = b""
            async with read_send:
                async for frame in ws:
                    if frame.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        continue
                    decoded = decode_frame(protocol, frame.data)
                    if decoded is None:
                        continue
                    channel, payload = decoded
                    if channel == STDOUT:
                        lines = (buffer + payload).split(b"\n")
                        buffer = lines.pop()
                        for line in lines:
                            if line.strip():
                                await read_send.send(_parse(line))
                    elif channel == STDERR:
                        logger.info("backend stderr: %s", payload.decode("utf-8", "replace").rstrip())
                    elif channel == ERROR and payload:
                        logger.warning("attach ended: %s", payload.decode("utf-8", "replace"))
            tg.cancel_scope.cancel()

        async def writer() -> None:
            async with write_receive:
                async for message in write_receive:
                    line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    frame = encode_frame(protocol, STDIN, line.encode() + b"\n")
                    if isinstance(frame, str):
                        await ws.send_str(frame)
                    else:
                        await ws.send_bytes(frame)

        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_receive, write_send
        finally:
            tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _connected(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], ssl_context: ssl.SSLContext | None
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The attach websocket; a failure to open it is counted and, when refused, explained."""
    tls: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
    try:
        ws = await http.ws_connect(
            url, headers=headers, protocols=CHANNEL_PROTOCOLS, ssl=tls, max_msg_size=_MAX_LINE, heartbeat=30.0
        )
    except aiohttp.WSServerHandshakeError as exc:
        refused = await _refusal(http, url, headers, tls, exc.status)
        ATTACH_FAILURES.labels(reason=refused.reason).inc()
        raise refused from exc
    except (aiohttp.ClientError, OSError) as exc:
        ATTACH_FAILURES.labels(reason=type(exc).__name__).inc()
        raise
    async with ws:
        yield ws


async def _refusal(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], tls: ssl.SSLContext | bool, status: int
) -> AttachRefusedError:
    """Why the API server refused the handshake (HTTP ``status``): the ``Status`` it answers a plain GET
    of the same URL with, when that GET is refused the same way; otherwise the status alone."""
    target = _pod_of(url)
    reason = _status_phrase(status)
    plain = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    try:
        async with http.get(plain, headers=headers, ssl=tls) as again:
            body = await again.content.read(_MAX_REFUSAL_BODY)
            if again.status != status:
                return AttachRefusedError(target, status, reason, "the API server gave no reason")
    except (aiohttp.ClientError, OSError) as exc:
        unread = f"its reason could not be read ({type(exc).__name__})"
        return AttachRefusedError(target, status, reason, unread)
    text = body.decode("utf-8", "replace").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        return AttachRefusedError(target, status, reason, text[:500] or "the API server gave no reason")
    if isinstance(answer, dict) and answer.get("kind") == "Status":
        reason = str(answer.get("reason") or reason)
        text = str(answer.get("message") or text)
    return AttachRefusedError(target, status, reason, text[:500])


def _pod_of(url: str) -> str:
    """``pod NAMESPACE/NAME`` of an attach URL (``.../namespaces/NS/pods/NAME/attach``)."""
    parts = urlsplit(url).path.split("/")
    if len(parts) >= 5 and parts[-3] == "pods" and parts[-5] == "namespaces":
        return f"pod {parts[-4]}/{parts[-2]}"
    return urlsplit(url).path


def _status_phrase(status: int) -> str:
    """``Forbidden``, ``NotFound``, ... (the API server's Status reasons are HTTP phrases in CamelCase)."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return f"HTTP{status}"


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        logger.warning("backend wrote a line that is not JSON-RPC: %s", line[:200])
        return exc
