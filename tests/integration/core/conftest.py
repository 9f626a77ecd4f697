"""Fixtures for the controller-core integration tests: the Gadget CRD and a manager runner."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.core import Manager, ManagerOptions
from tests.integration.core.gadgets import GADGET, GADGET_CRD


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


@pytest.fixture
async def gadget_crd(api_client: client.ApiClient) -> None:
    await install_gadget_crd(api_client)


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


async def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``check`` every 20 ms; return the seconds it took; fail naming ``what``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def writes(manager: Manager) -> float:
    """Write requests the manager's client sent so far (from rest_client_requests_total)."""
    total = 0.0
    for family in manager.metrics.registry.collect():
        if family.name != "rest_client_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["method"] in (
                "POST",
                "PUT",
                "PATCH",
                "DELETE",
            ):
                total += sample.value
    return total
