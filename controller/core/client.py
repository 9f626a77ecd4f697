"""The API client seam: every read and write of the operator goes through :class:`KubeClient`.

It works on raw dicts, applies a client-side token bucket (default 20 qps / burst 30), honours 429
``Retry-After`` (a 429 pauses the whole bucket, so requests throttled together retry one by one), and
records ``rest_client_*`` metrics. Watches are exposed as raw event dicts; the informer owns the
list/watch/relist loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from controller.core.clock import Clock, MonotonicClock
from controller.core.metrics import Metrics
from controller.core.ratelimit import TokenBucket
from controller.core.resources import EVENT, Resource
from kube.transport import Request, Response, Transport, TransportError, decode_json

FIELD_MANAGER = "mcp-operator"
"""The one stable field manager of every server-side apply (renaming it would orphan ownership)."""
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
MAX_429_RETRIES = 10

log = structlog.get_logger("mcp-operator.client")


class ApiError(Exception):
    """The API server answered with an error status; ``status`` is the HTTP code."""

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def expected_in_teardown(self) -> bool:
        """What a reconcile meets while objects or their namespace are being deleted around it: 404 Not
        Found, 409 Conflict, or 403 for a write into a namespace being terminated. Retried quietly."""
        if self.status in (404, 409):
            return True
        causes = (self.body.get("details") or {}).get("causes") or []
        # metav1.StatusCause serialises its type as "reason".
        return self.status == 403 and any(
            isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
        )


class KubeClient:
    """get / list / watch / apply / apply_status / create / replace / patch / delete / create_event."""

    def __init__(
        self,
        transport: Transport,
        *,
        qps: float = 20.0,
        burst: int = 30,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.transport = transport
        self._clock = clock or MonotonicClock()
        self._bucket = TokenBucket(qps, burst, self._clock) if qps > 0 else None
        self.metrics = metrics or Metrics()

    async def close(self) -> None:
        await self.transport.close()

    # ------------------------------------------------------------------------------------- reads

    async def get(
        self, resource: Resource, namespace: str | None, name: str, subresource: str = ""
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self._json(Request("GET", resource.object_path(namespace, name, subresource)))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def group_versions(self, group: str) -> list[str]:
        """The versions the API server serves of API group ``group`` (discovery); [] for none."""
        try:
            answer = await self._json(Request("GET", f"/apis/{group}"))
        except ApiError as exc:
            if exc.not_found:
                return []
            raise
        return [str(version.get("version")) for version in answer.get("versions") or []]

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All objects (paged with ``limit``/``continue``) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        query: dict[str, str] = {"limit": str(page_size)}
        if label_selector:
            query["labelSelector"] = label_selector
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        while True:
            page = await self._json(Request("GET", resource.collection_path(namespace), dict(query)))
            kind = resource.kind
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion", ""))
            query = {"limit": str(page_size), "continue": str(token)}
            if label_selector:
                query["labelSelector"] = label_selector

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int,
        line_timeout: float,
        label_selector: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Raw watch events (``{"type": ..., "object": ...}``) with bookmarks, until the server ends it.

        Raises :class:`ApiError` for an error status (410 included) and ``TimeoutError`` when the answer
        or a line does not arrive within ``line_timeout`` seconds (a silently dead stream or connection).
        """
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            query["labelSelector"] = label_selector
        request = Request("GET", resource.collection_path(namespace), query, timeout=None, watch=True)
        # A watch sent on a dead pooled connection never gets its answer, and has no total timeout.
        response = await asyncio.wait_for(self._send(request), line_timeout)
        try:
            if response.status >= 400:
                raise _error_from(response.status, await response.read())
            lines = response.lines().__aiter__()
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps each read in a task.
                    async with asyncio.timeout(line_timeout):
                        line = await lines.__anext__()
                except StopAsyncIteration:
                    return
                if line.strip():
                    yield decode_json(line)
        finally:
            response.close()

    # ------------------------------------------------------------------------------------ writes

    async def apply(
        self, resource: Resource, obj: dict[str, Any], *, subresource: str = "", force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` with field manager ``mcp-operator`` (``force`` by default)."""
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError(f"cannot apply a {resource.kind} without metadata.name")
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        query = {"fieldManager": FIELD_MANAGER}
        if force:
            query["force"] = "true"
        path = resource.object_path(meta.get("namespace"), str(name), subresource)
        return await self._json(Request("PATCH", path, query, body, APPLY_PATCH))

    async def apply_status(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply on the ``/status`` subresource (status owned apart from spec)."""
        return await self.apply(resource, obj, subresource="status")

    async def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = (obj.get("metadata") or {}).get("namespace")
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        return await self._json(Request("POST", resource.collection_path(namespace), {}, body))

    async def replace(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT (an optimistic update when ``metadata.resourceVersion`` is set)."""
        meta = obj["metadata"]
        path = resource.object_path(meta.get("namespace"), meta["name"])
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        return await self._json(Request("PUT", path, {}, body))

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return await self._json(
            Request("PATCH", resource.object_path(namespace, name), {}, body, content_type)
        )

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. ``uid`` guards against deleting a re-created object."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._json(Request("DELETE", resource.object_path(namespace, name), {}, body))
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def create_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self.create(EVENT, event)

    # --------------------------------------------------------------------------------- internals

    async def _json(self, request: Request) -> dict[str, Any]:
        response = await self._send(request)
        data = await response.read()
        if response.status >= 400:
            raise _error_from(response.status, data)
        return decode_json(data)

    async def _send(self, request: Request) -> Response:
        """Rate-limit, send, record metrics, and retry 429s after their ``Retry-After``."""
        verb = request.method
        for attempt in range(MAX_429_RETRIES + 1):
            if self._bucket is not None:
                waited = await self._bucket.acquire()
                self.metrics.rest_client_rate_limiter_duration_seconds.labels(
                    verb, self.transport.host
                ).observe(waited)
            started = time.monotonic()
            try:
                response = await self.transport.send(request)
            except TransportError:
                self.metrics.rest_client_requests_total.labels("<error>", verb, self.transport.host).inc()
                raise
            finally:
                self.metrics.rest_client_request_duration_seconds.labels(verb, self.transport.host).observe(
                    time.monotonic() - started
                )
            self.metrics.rest_client_requests_total.labels(
                str(response.status), verb, self.transport.host
            ).inc()
            if response.status != 429 or attempt == MAX_429_RETRIES:
                return response
            delay = _retry_after(response.headers.get("Retry-After"))
            await response.read()
            self.metrics.rest_client_request_retries_total.labels("429", verb, self.transport.host).inc()
            log.info("throttled by the API server", method=verb, path=request.path, retry_after=delay)
            if self._bucket is not None:
                self._bucket.pause(delay)  # every request of this client waits, then they go one by one
            else:  # no client-side limiter: spread the retries of requests throttled together
                await self._clock.sleep(delay * (1.0 + random.random()))
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float:
    try:
        return min(60.0, max(0.0, float(value))) if value else 1.0
    except ValueError:
        return 1.0


def _error_from(status: int, data: bytes) -> ApiError:
    try:
        body = decode_json(data)
    except ValueError:
        body = {"message": data.decode("utf-8", "replace")[:500]}
    return ApiError(status, str(body.get("reason", "")), str(body.get("message", "")), body)
