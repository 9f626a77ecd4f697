"""The project's benchmarks (``make bench``): operator scale and cost, proxy latency and throughput, the
virtual MCP gateway, and MCPServers in real pods on the local node (``BENCH=pods``). Each benchmark
measures in a ``*_bench`` module and turns its measurements into its section of docs/benchmarks.md in a
pure ``*_report`` module (unit-tested on saved results)."""
