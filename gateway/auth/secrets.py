"""Run-time resolution of secret references (:class:`api.auth_config.SecretValueSource`).

The config file names where a secret lives (an environment variable or a file of a mounted Secret
volume), never the value. :class:`SecretReader` reads it when needed: environment variables once per
call (cheap), files again whenever their modification time changes, so a rotated Secret is picked up
without a restart (the kubelet updates Secret volumes in place).

Errors name the config field that points at the secret and what to fix; they never include the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from api.auth_config import SecretValueSource

__all__ = ["SecretReader", "SecretUnavailableError"]


class SecretUnavailableError(RuntimeError):
    """A referenced secret is missing or empty."""


class SecretReader:
    """Reads one secret reference; ``field`` (e.g. ``clientSecretRef``) is quoted in errors."""

    def __init__(
        self, ref: SecretValueSource, *, field: str, environ: Mapping[str, str] | None = None
    ) -> None:
        self._ref = ref
        self._field = field
        self._environ = environ
        self._file_cache: tuple[int, str] | None = None

    @property
    def field(self) -> str:
        return self._field

    def read(self) -> str:
        """Return the current value; raise :class:`SecretUnavailableError` when missing or empty."""
        if self._ref.env is not None:
            environ = os.environ if self._environ is None else self._environ
            value = environ.get(self._ref.env)
            if value is None:
                raise SecretUnavailableError(
                    f"{self._field}: environment variable {self._ref.env} is not set; the Secret key it "
                    "should come from is missing, or the container env does not map it"
                )
        else:
            value = self._read_file(Path(str(self._ref.file)))
        value = value.strip("\r\n")
        if not value:
            raise SecretUnavailableError(
                f"{self._field}: {self._ref.describe()} is empty; put the secret in it"
            )
        return value

    def _read_file(self, path: Path) -> str:
        try:
            mtime = path.stat().st_mtime_ns
            if self._file_cache is not None and self._file_cache[0] == mtime:
                return self._file_cache[1]
            value = path.read_text(encoding="utf-8")
        except OSError as err:
            raise SecretUnavailableError(
                f"{self._field}: cannot read file {path} ({err.strerror or err}); check the Secret volume "
                "mount and the key name"
            ) from None
        self._file_cache = (mtime, value)
        return value
