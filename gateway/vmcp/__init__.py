"""The virtual MCP gateway: one MCP endpoint aggregating several backend MCP servers."""
