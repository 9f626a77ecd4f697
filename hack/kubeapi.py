"""A minimal Kubernetes API client for hack/ (standard library only: it runs before any venv exists)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """An answer other than 2xx; ``status`` is the HTTP status (0 when the server did not answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Api:
    """The local kube-apiserver, reached with the admin token over TLS checked against the cluster CA."""

    server: str
    token: str
    ca_file: Path

    @classmethod
    def from_files(cls, server: str, token_file: Path, ca_file: Path) -> Api:
        return cls(server, token_file.read_text().strip(), ca_file)

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace")[:500]) from exc
        except OSError as exc:
            raise ApiError(0, str(exc)) from exc
        return dict(json.loads(payload)) if payload else {}

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def apply(self, path: str, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        """Server-side apply of ``obj`` (JSON is YAML) at ``path``, taking over conflicting fields."""
        return self.request(
            "PATCH", f"{path}?fieldManager={manager}&force=true", obj, "application/apply-patch+yaml"
        )
