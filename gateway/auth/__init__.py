"""Auth for the data plane: inbound OIDC (``inbound``) and outbound backend credentials (``outbound``).

Configuration models live in :mod:`api.auth_config`; secrets are read at run time by
:mod:`gateway.auth.secrets`. See ``docs/auth.md``.
"""
