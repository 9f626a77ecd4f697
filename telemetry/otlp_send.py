"""The one place OTLP payloads leave the process: a POST of protobuf bytes (OTLP/HTTP) or a gRPC channel
to the collector (OTLP/gRPC), for spans (:mod:`telemetry.record_export`) and metrics
(:mod:`telemetry.metrics`). Any error is a failure to report, never an exception: the callers drop and
count what could not be sent.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Any

from telemetry.settings import OtlpSettings

__all__ = ["grpc_channel", "grpc_metadata", "post_protobuf"]


def post_protobuf(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bool:
    """One POST of ``application/x-protobuf``; True on a 2xx answer within ``timeout`` (no retry)."""
    request = urllib.request.Request(
        url, body, {**headers, "Content-Type": "application/x-protobuf"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except (OSError, ValueError):  # URLError and HTTPError (non-2xx) are OSErrors
        return False
    return True


def grpc_channel(settings: OtlpSettings) -> Any:
    """A channel to the collector: plain text when ``insecure`` or the endpoint's scheme is ``http``."""
    import grpc  # type: ignore[import-untyped]  # noqa: PLC0415 (only with protocol grpc)

    target = settings.endpoint.split("://", 1)[1].rstrip("/")
    if settings.insecure or settings.endpoint.startswith("http://"):
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, grpc.ssl_channel_credentials())


def grpc_metadata(settings: OtlpSettings) -> list[tuple[str, str]]:
    """The exporter headers as gRPC metadata (whose keys are lower case)."""
    return [(key.lower(), value) for key, value in settings.headers.items()]
