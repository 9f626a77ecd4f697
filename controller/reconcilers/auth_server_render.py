"""An MCPExternalAuthConfig ``embeddedAuthServer`` block as the proxy's ``authServer`` config (pure).

Secret keys become environment variables of the proxy container (:class:`SecretEnv`), never values in
the ConfigMap. An OIDC provider named by a cluster Service name (``*.svc``) may resolve to a private
address (the SSRF guard refuses those otherwise). A ``sentinelService`` becomes the Service's cluster
DNS name: it resolves to every sentinel pod, so the address list stays right when sentinel pods move
(no re-render, no endpoint reads, no permission to read endpoints).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from api.authserver_config import AuthServerConfig
from api.durations import duration_seconds
from api.embedded_auth import (
    EmbeddedAuthServerConfig,
    RedisStorageConfig,
    TokenLifespanConfig,
    UpstreamProviderConfig,
)
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from controller.reconcilers.render import SecretEnv
from controller.reconcilers.settings import ReconcilerSettings

__all__ = ["auth_server_config", "embedded_auth_server"]

REDIS_TIMEOUT_SECONDS = 3.0
"""ToolHive's Redis read and write timeout."""


def _lifespans(config: TokenLifespanConfig | None) -> dict[str, float]:
    if config is None:
        return {}
    values = {
        "accessTokenLifespan": config.access_token_lifespan,
        "refreshTokenLifespan": config.refresh_token_lifespan,
        "authCodeLifespan": config.auth_code_lifespan,
    }
    return {key: duration_seconds(value) for key, value in values.items() if value}


def in_cluster(url: str, cluster_domain: str) -> bool:
    """The URL names a Service of the cluster: the user chose a private address on purpose."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    return host.endswith(".svc") or host.endswith(f".svc.{cluster_domain}")


def _upstream(upstream: UpstreamProviderConfig, secrets: SecretEnv, cluster_domain: str) -> dict[str, Any]:
    block = upstream.oidc_config if upstream.type == "oidc" else upstream.oauth2_config
    assert block is not None  # the rules refuse a provider without its block
    data: dict[str, Any] = {"name": upstream.name, "type": upstream.type, "clientId": block.client_id}
    if upstream.oidc_config is not None:
        data["issuerUrl"] = upstream.oidc_config.issuer_url
        data["allowPrivateEndpoint"] = in_cluster(upstream.oidc_config.issuer_url, cluster_domain)
        if upstream.oidc_config.subject_claim:
            data["subjectClaim"] = upstream.oidc_config.subject_claim
    if upstream.oauth2_config is not None:
        oauth2 = upstream.oauth2_config
        data |= {
            "authorizationEndpoint": oauth2.authorization_endpoint,
            "tokenEndpoint": oauth2.token_endpoint,
            "insecureAllowHttp": oauth2.insecure_allow_http,
            "allowPrivateEndpoint": oauth2.allow_private_i_ps,
        }
    if block.client_secret_ref is not None:
        data["clientSecretRef"] = secrets.source(block.client_secret_ref)
    if block.redirect_uri:
        data["redirectUri"] = block.redirect_uri
    if block.scopes is not None:
        data["scopes"] = tuple(block.scopes)
    if block.additional_authorization_params:
        data["additionalAuthorizationParams"] = dict(sorted(block.additional_authorization_params.items()))
    return data


def _redis(
    redis: RedisStorageConfig, namespace: str, cluster_domain: str, secrets: SecretEnv
) -> dict[str, Any]:
    timeouts = [
        duration_seconds(t) for t in (redis.dial_timeout, redis.read_timeout, redis.write_timeout) if t
    ]
    data: dict[str, Any] = {
        "timeout": max(timeouts) if timeouts else REDIS_TIMEOUT_SECONDS,
        "passwordRef": secrets.source(redis.acl_user_config.password_secret_ref),
    }
    if redis.acl_user_config.username_secret_ref is not None:
        data["usernameRef"] = secrets.source(redis.acl_user_config.username_secret_ref)
    if redis.addr is not None:
        data["address"] = redis.addr
    sentinel = redis.sentinel_config
    if sentinel is not None:
        data["sentinelMaster"], data["db"] = sentinel.master_name, sentinel.db
        if sentinel.sentinel_service is not None:
            service = sentinel.sentinel_service
            host = f"{service.name}.{service.namespace or namespace}.svc.{cluster_domain}"
            data["sentinelAddresses"] = (f"{host}:{service.port}",)
        else:
            data["sentinelAddresses"] = tuple(sentinel.sentinel_addrs or ())
    if redis.tls is not None:
        data["tls"] = True
        if redis.tls.ca_cert_secret_ref is not None:
            data["caCertRef"] = secrets.source(redis.tls.ca_cert_secret_ref)
    return data


def auth_server_config(
    config: EmbeddedAuthServerConfig,
    *,
    namespace: str,
    resource_url: str,
    cluster_domain: str,
    secrets: SecretEnv,
) -> AuthServerConfig:
    """The proxy's ``authServer``; raises ValueError (naming the field) when the runtime refuses it."""
    storage: dict[str, Any] = {"type": "memory"}
    if config.storage is not None and config.storage.redis is not None:
        storage = {"type": "redis", "redis": _redis(config.storage.redis, namespace, cluster_domain, secrets)}
    data: dict[str, Any] = {
        "issuer": config.issuer,
        "authorizationEndpointBaseUrl": config.authorization_endpoint_base_url,
        "resourceUrl": resource_url,
        "signingKeys": tuple(secrets.source(ref) for ref in config.signing_key_secret_refs or ()),
        "hmacSecrets": tuple(secrets.source(ref) for ref in config.hmac_secret_refs or ()),
        "tokenLifespans": _lifespans(config.token_lifespans),
        "upstream": _upstream(config.upstream_providers[0], secrets, cluster_domain),
        "storage": storage,
        "disableUpstreamTokenInjection": config.disable_upstream_token_injection,
        "insecureAllowHttp": config.insecure_allow_http,
        "allowConfidentialClientRegistration": config.allow_confidential_client_registration,
        "insecureAllowConfidentialOverLoopbackHttp": config.insecure_allow_confidential_over_loopback_http,
        "baselineClientScopes": tuple(config.baseline_client_scopes or ()),
    }
    return AuthServerConfig.model_validate(data)


def embedded_auth_server(
    config: MCPExternalAuthConfig | None,
    namespace: str,
    endpoint_path: str,
    settings: ReconcilerSettings,
    secrets: SecretEnv,
) -> AuthServerConfig | None:
    """A workload's ``authServer`` from its ``spec.authServerRef`` config (None without one). Clients
    reach the MCP endpoint on the issuer's host: tokens are issued for ``<issuer><endpoint_path>``."""
    if config is None or config.spec.embedded_auth_server is None:
        return None
    embedded = config.spec.embedded_auth_server
    return auth_server_config(
        embedded,
        namespace=namespace,
        resource_url=f"{embedded.issuer}{endpoint_path}",
        cluster_domain=settings.cluster_domain,
        secrets=secrets,
    )
