"""The data plane's backend layer: everything that talks to an MCP server behind the proxy or gateway.

One connection supervisor (:class:`gateway.backends.connection.BackendConnection`: connect, protocol era
detection, reconnect with backoff, readiness, failing in-flight calls when the transport ends), one
HTTP policy and credential adapter (:mod:`gateway.backends.http`: timeouts, no redirects, the SSRF
guard of :mod:`gateway.backends.ssrf`, outbound credentials asked per request), the transports (stdio
subprocess :mod:`~gateway.backends.stdio`, Kubernetes attach :mod:`~gateway.backends.attach`, streamable
HTTP and SSE), the fast path's raw channel (:mod:`~gateway.backends.raw_channel`) and per-caller sessions
(:mod:`~gateway.backends.callers`). One logging scheme: the ``mcp_operator.backend`` logger, messages
naming the backend by its description.

The proxy, the remote proxy and the virtual gateway use this layer; it imports neither of them (an
import contract in pyproject.toml). The I/O seam is a ``TransportFactory``; its test double,
:func:`gateway.backends.testing.memory_transport`, serves an in-process MCP server.
"""
