"""A test CRD (Gadget), test controllers over it and a manager runner, shared by the core integration tests
and the leader-election child process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from controller.core import (
    CONFIGMAP,
    Controller,
    Manager,
    ManagerOptions,
    ObjectKey,
    ReconcileContext,
    Resource,
    Result,
)
from controller.core.objects import owner_reference, set_condition

GADGET = Resource("core-test.mcp-operator.dev", "v1", "Gadget", "gadgets")

GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.core-test.mcp-operator.dev"},
    "spec": {
        "group": GADGET.group,
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "properties": {
                                    "observedGeneration": {"type": "integer"},
                                    "conditions": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["type"],
                                        "items": {
                                            "type": "object",
                                            "required": ["type", "status"],
                                            "properties": {
                                                "type": {"type": "string"},
                                                "status": {"type": "string"},
                                                "reason": {"type": "string"},
                                                "message": {"type": "string"},
                                                "observedGeneration": {"type": "integer"},
                                                "lastTransitionTime": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def gadget(namespace: str, name: str, size: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": GADGET.api_version,
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


@dataclass
class Recorder:
    """Remembers what each reconcile saw (key -> count, key -> last generation seen, and when)."""

    counts: Counter[ObjectKey] = field(default_factory=Counter)
    seen: dict[ObjectKey, tuple[int | None, float]] = field(default_factory=dict)
    sizes: dict[ObjectKey, int | None] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, key: ObjectKey, obj: dict[str, Any] | None) -> None:
        self.counts[key] += 1
        generation = obj["metadata"].get("generation") if obj else None
        self.seen[key] = (generation, time.monotonic())
        self.sizes[key] = obj["spec"].get("size") if obj else None
        self.changed.set()


def observing_controller(recorder: Recorder, name: str = "gadget-observer") -> Controller:
    """Reads only: counts reconciles and remembers what the cache held."""

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        recorder.note(key, ctx.cache.get(GADGET, key.namespace, key.name))
        return Result.done()

    return Controller(name=name, for_=GADGET, reconcile=reconcile)


def converging_controller(recorder: Recorder, name: str = "gadget-converger") -> Controller:
    """Owns a ConfigMap per Gadget and writes a Ready condition: the writes a real controller does."""

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        obj = ctx.cache.get(GADGET, key.namespace, key.name)
        recorder.note(key, obj)
        if obj is None:
            return Result.done()
        size = int(obj["spec"].get("size", 0))
        await ctx.applier.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{key.name}-data",
                    "namespace": key.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "mcp-operator"},
                    "ownerReferences": [owner_reference(obj)],
                },
                "data": {"size": str(size)},
            }
        )
        generation = obj["metadata"]["generation"]
        status = obj.get("status") or {}
        conditions = set_condition(
            status.get("conditions"),
            "Ready",
            "True",
            "Converged",
            f"size {size}",
            observed_generation=generation,
        )
        await ctx.applier.apply_status(obj, {"observedGeneration": generation, "conditions": conditions})
        await ctx.events.record(obj, "Normal", "Converged", f"size {size}")
        return Result.done()

    return Controller(name=name, for_=GADGET, owns=[CONFIGMAP], reconcile=reconcile)


async def install_gadget_crd(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    try:
        await ext.create_custom_resource_definition(GADGET_CRD)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = await ext.read_custom_resource_definition(GADGET_CRD["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the Gadget CRD never became Established")


async def create_gadgets(api: client.ApiClient, bodies: list[dict[str, Any]]) -> None:
    custom = client.CustomObjectsApi(api)
    sem = asyncio.Semaphore(16)

    async def one(body: dict[str, Any]) -> None:
        async with sem:
            await custom.create_namespaced_custom_object(
                GADGET.group, GADGET.version, body["metadata"]["namespace"], GADGET.plural, body
            )

    await asyncio.gather(*(one(b) for b in bodies))


async def patch_gadget(api: client.ApiClient, namespace: str, name: str, size: int) -> None:
    await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GADGET.group,
        GADGET.version,
        namespace,
        GADGET.plural,
        name,
        {"spec": {"size": size}},
        _content_type="application/merge-patch+json",
    )


def manager_options(kubeconfig: Path, **overrides: Any) -> ManagerOptions:
    return ManagerOptions(
        kubeconfig=str(kubeconfig),
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="127.0.0.1:0",
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(manager: Manager) -> AsyncIterator[asyncio.Task[int]]:
    """Run ``manager`` in a task; stop it gracefully on exit and check it exited 0."""
    task = asyncio.create_task(manager.run(handle_signals=False))
    try:
        yield task
    finally:
        manager.stop()
        code = await asyncio.wait_for(task, 40)
        assert code == 0
