"""The embedded OAuth 2.1 authorization server of the proxy (docs/auth.md, "Embedded authorization
server"): keys, storage, the upstream identity provider, the SDK-backed endpoints and the MCP
endpoint's token validator."""
