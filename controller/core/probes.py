"""A tiny HTTP server for ``/healthz`` and ``/readyz`` (asyncio streams, no framework)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def split_address(address: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """Parse controller-runtime style bind addresses (``:8081``, ``127.0.0.1:8081``)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bind address '{address}' must look like HOST:PORT or :PORT")
    return (host.strip("[]") or default_host), int(port)


class ProbeServer:
    """Serves ``/healthz`` (the process runs) and ``/readyz`` (``ready()`` is true)."""

    def __init__(self, address: str, ready: Callable[[], bool]) -> None:
        self.host, self.port = split_address(address)
        self._ready = ready
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else ""
            if path in ("/healthz", "/livez"):
                status, body = "200 OK", "ok"
            elif path == "/readyz":
                status, body = ("200 OK", "ok") if self._ready() else ("503 Service Unavailable", "not ready")
            else:
                status, body = "404 Not Found", "not found"
            payload = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
