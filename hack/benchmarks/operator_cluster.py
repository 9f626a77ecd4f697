"""The operator benchmark's side of the API server: the MCPServers it creates, the API server's write
counters, the watch that times convergence, and the bare-loop floor the operator is compared with."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from api.mcpserver import MCPServer
from controller.core.apply import body_hash, with_applied_hash
from controller.core.client import KubeClient
from controller.core.objects import owner_reference
from controller.core.resources import (
    CONFIGMAP,
    DEPLOYMENT,
    ROLE,
    ROLEBINDING,
    SERVICE,
    SERVICEACCOUNT,
    STATEFULSET,
    Resource,
)
from controller.reconcilers import mcpserver_build as build
from controller.reconcilers.kinds import MCPSERVER
from controller.reconcilers.settings import ReconcilerSettings
from kube.transport import KubeTransport, Request

CHILD_KINDS: dict[str, Resource] = {
    r.kind: r for r in (STATEFULSET, DEPLOYMENT, SERVICE, CONFIGMAP, SERVICEACCOUNT, ROLE, ROLEBINDING)
}
EXPECTED_PER_SERVER = {"StatefulSet": 1, "Deployment": 1, "Service": 1, "ConfigMap": 1,
                       "ServiceAccount": 2, "Role": 1, "RoleBinding": 1}  # fmt: skip
COUNTED_RESOURCES = {r.plural for r in CHILD_KINDS.values()} | {MCPSERVER.plural, "events"}
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION"}
IMAGE_1 = "ghcr.io/example/bench-server:1.0.0"
IMAGE_2 = "ghcr.io/example/bench-server:1.0.1"


def say(msg: str) -> None:
    print(f"[bench_operator] {msg}", file=sys.stderr, flush=True)


def server_manifest(namespace: str, name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": MCPSERVER.api_version,
        "kind": MCPSERVER.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": image,
            "transport": "stdio",
            "proxyPort": 8080,
            "env": [{"name": "TRANSPORT", "value": "stdio"}],
            "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}},
        },
    }


def names(n: int) -> list[str]:
    return [f"s{i:05d}" for i in range(n)]


async def bounded(items: list[Any], concurrency: int, func: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``func`` over ``items`` with ``concurrency`` workers (no task per item)."""
    queue = list(reversed(items))

    async def worker() -> None:
        while queue:
            await func(queue.pop())

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))


# --------------------------------------------------------------------------- API server counters


async def apiserver_writes(transport: KubeTransport) -> dict[str, float]:
    """``apiserver_request_total`` write counts by ``resource[/subresource]`` for the counted kinds."""
    response = await transport.send(Request("GET", "/metrics", timeout=60))
    text = (await response.read()).decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if labels.get("verb") not in WRITE_VERBS or labels.get("resource") not in COUNTED_RESOURCES:
            continue
        key = labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def control_plane_pids(kubeconfig: str) -> list[int]:
    """kube-apiserver and etcd of a hack/cluster instance (their pid files sit beside the kubeconfig)."""
    pids = []
    for name in ("kube-apiserver", "etcd"):
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((Path(kubeconfig).parent / f"{name}.pid").read_text().split()[0]))
    return pids


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in after.items() if int(v - before.get(k, 0.0))}


def own_writes(client: KubeClient) -> int:
    """Writes this process sent through ``client`` (from its rest_client_requests_total)."""
    total = 0.0
    for metric in client.metrics.rest_client_requests_total.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("method") in WRITE_VERBS:
                total += sample.value
    return int(total)


# ------------------------------------------------------------------------------- watching status


class Tracker:
    """Watches the MCPServers of one namespace; tells when all N have observed a generation."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.objects: dict[str, tuple[int, int]] = {}  # name -> (generation, observedGeneration)
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        items, rv = await self.client.list(MCPSERVER, self.namespace)
        for obj in items:
            self._note(obj)
        self._task = asyncio.create_task(self._run(rv))

    def _note(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        observed = int((obj.get("status") or {}).get("observedGeneration") or 0)
        self.objects[meta["name"]] = (int(meta.get("generation") or 0), observed)

    async def _run(self, rv: str) -> None:
        while True:
            async for event in self.client.watch(
                MCPSERVER, self.namespace, rv, timeout_seconds=3600, line_timeout=3600
            ):
                obj = event.get("object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if event.get("type") == "DELETED":
                    self.objects.pop(obj["metadata"]["name"], None)
                elif event.get("type") in ("ADDED", "MODIFIED"):
                    self._note(obj)
                self.changed.set()

    async def until(self, done: Callable[[], bool], timeout: float) -> float:  # noqa: ASYNC109
        """Wait until ``done()``; the monotonic time at which it first held."""
        deadline = time.monotonic() + timeout
        while not done():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"not converged within {timeout:.0f} s: {self.summary()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return time.monotonic()

    def converged(self, n: int, generation: int) -> bool:
        return len(self.objects) == n and all(g >= generation and o == g for g, o in self.objects.values())

    def observed(self, generations: dict[str, int]) -> bool:
        """Every named server's status has observed at least the generation given for it."""
        return all(self.objects.get(name, (0, 0))[1] >= g for name, g in generations.items())

    def summary(self) -> str:
        pending = [k for k, (g, o) in self.objects.items() if o != g]
        return f"{len(self.objects)} objects, {len(pending)} not observed (e.g. {pending[:3]})"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# ------------------------------------------------------------------------------ the bare floor


def floor_status(obj: dict[str, Any]) -> dict[str, Any]:
    """A status of the operator's shape (phase, url, observedGeneration, three conditions)."""
    meta = obj["metadata"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = int(meta.get("generation") or 1)
    conditions = [
        {"type": t, "status": s, "reason": r, "message": m, "observedGeneration": generation,
         "lastTransitionTime": now}
        for t, s, r, m in (
            ("Accepted", "True", "Accepted", "the spec is valid"),
            ("ResolvedRefs", "True", "ResolvedRefs", "every referenced object exists"),
            ("Ready", "False", "Unavailable", f"Deployment {meta['name']} has no ready pod yet"),
        )
    ]  # fmt: skip
    return {
        "phase": "Pending",
        "message": f"Deployment {meta['name']} has no ready pod yet",
        "url": f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:8080/mcp",
        "readyReplicas": 0,
        "observedGeneration": generation,
        "conditions": conditions,
    }


class Floor:
    """Children applied by a bare loop with the operator's client: no informer, queue or reconciler."""

    def __init__(self, client: KubeClient, user: KubeClient, namespace: str, concurrency: int) -> None:
        self.client = client
        self.user = user
        self.namespace = namespace
        self.concurrency = concurrency
        self.settings = ReconcilerSettings()
        self.last: dict[str, dict[str, str]] = {}  # server -> child "Kind/name" -> body hash

    async def _apply_children(self, obj: dict[str, Any], only_changed: bool) -> None:
        server = MCPServer.model_validate(obj)
        desired = build.build_children(server, owner_reference(obj), self.settings, None)
        hashes = self.last.setdefault(obj["metadata"]["name"], {})
        for child in desired:
            slot = f"{child['kind']}/{child['metadata']['name']}"
            digest = body_hash(child)
            if only_changed and hashes.get(slot) == digest:
                continue
            # The same body as the operator sends (stamped with its hash).
            await self.client.apply(CHILD_KINDS[child["kind"]], with_applied_hash(child, digest))
            hashes[slot] = digest
        ident = {"name": obj["metadata"]["name"], "namespace": self.namespace}
        await self.client.apply_status(MCPSERVER, {"metadata": ident, "status": floor_status(obj)})

    async def create(self, n: int) -> None:
        async def one(name: str) -> None:
            created = await self.user.create(MCPSERVER, server_manifest(self.namespace, name, IMAGE_1))
            await self._apply_children(created, only_changed=False)

        await bounded(names(n), self.concurrency, one)

    async def roll(self, n: int) -> None:
        async def one(name: str) -> None:
            patched = await self.user.patch(MCPSERVER, self.namespace, name, {"spec": {"image": IMAGE_2}})
            await self._apply_children(patched, only_changed=True)

        await bounded(names(n), self.concurrency, one)
