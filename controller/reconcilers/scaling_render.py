"""``sessionStorage`` and ``rateLimiting`` of a workload as the data plane's config (pure).

The Redis password stays in its Secret: the config names an environment variable that the pod's
container maps from the Secret key (:class:`controller.reconcilers.render.SecretEnv`).
"""

from __future__ import annotations

from typing import Any

from api.scaling import RateLimiting, SessionStorage
from api.scaling_config import RateLimitConfig, SessionStorageConfig
from controller.reconcilers.render import SecretEnv

__all__ = ["password_env", "rate_limit_config", "session_storage_config"]


def session_storage_config(storage: SessionStorage | None, secrets: SecretEnv) -> SessionStorageConfig:
    """The config's ``sessionStorage`` (memory when unset); the password is registered in ``secrets``."""
    if storage is None:
        return SessionStorageConfig()
    data = storage.model_dump(by_alias=True, exclude_none=True, exclude={"password_ref"})
    if storage.password_ref is not None:
        data["passwordRef"] = secrets.source(storage.password_ref)
    return SessionStorageConfig.model_validate(data)


def rate_limit_config(limits: RateLimiting | None) -> RateLimitConfig | None:
    return (
        None
        if limits is None
        else RateLimitConfig.model_validate(limits.model_dump(by_alias=True, exclude_none=True))
    )


def password_env(storage: SessionStorage | None) -> list[dict[str, Any]]:
    """The container env entry of the Redis password, if any."""
    secrets = SecretEnv()
    session_storage_config(storage, secrets)
    return secrets.env()
