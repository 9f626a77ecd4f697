"""A tiny HTTP server (asyncio streams, no framework) for ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Route = Callable[[], tuple[int, str, bytes]]
"""A handler: returns (status code, content type, body)."""

REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def split_address(address: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """Parse controller-runtime style bind addresses (``:8081``, ``127.0.0.1:8081``)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bind address '{address}' must look like HOST:PORT or :PORT")
    return (host.strip("[]") or default_host), int(port)


class HttpServer:
    """Serves GET routes on one address; unknown paths answer 404."""

    def __init__(self, address: str, routes: dict[str, Route]) -> None:
        self.host, self.port = split_address(address)
        self.routes = routes
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
            route = self.routes.get(path)
            status, content_type, payload = route() if route else (404, "text/plain", b"not found")
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


class ProbeServer(HttpServer):
    """``/healthz`` (the process runs) and ``/readyz`` (``ready()`` is true, e.g. caches synced)."""

    def __init__(
        self, address: str, ready: Callable[[], bool], healthy: Callable[[], bool] | None = None
    ) -> None:
        def health() -> tuple[int, str, bytes]:
            ok = healthy() if healthy else True
            return (200, "text/plain", b"ok") if ok else (503, "text/plain", b"unhealthy")

        def readiness() -> tuple[int, str, bytes]:
            return (200, "text/plain", b"ok") if ready() else (503, "text/plain", b"not ready")

        super().__init__(address, {"/healthz": health, "/livez": health, "/readyz": readiness})
