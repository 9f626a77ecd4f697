"""The data plane's backend layer: everything that talks to an MCP server behind the proxy or gateway.

Its parts are listed in docs/proxy.md ("Semantics"). It imports neither the proxy nor the gateway (an
import contract); its I/O seam is a ``TransportFactory``, whose test double is
:func:`gateway.backends.testing.memory_transport`.
"""
