"""Disruption on a cluster instance of its own: kube-apiserver killed mid-watch, and a forced 410 Gone
(etcd history compacted while the watch is down). In both cases no change is lost."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from controller.core import Manager, ObjectKey
from tests.support.cluster import PROCESS_CACHE, Cluster, kill_component, own_instance
from tests.support.gadgets import (
    GADGET,
    Recorder,
    create_gadgets,
    gadget,
    install_gadget_crd,
    manager_options,
    observing_controller,
    patch_gadget,
    running,
)
from tests.support.waiting import until


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Etcd:
    """etcd's v3 JSON gateway: enough to change data behind the API server's back."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/v3"

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def get(self, key: str) -> dict[str, Any]:
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs") or []
        assert kvs, f"etcd has no key {key}"
        return dict(json.loads(base64.b64decode(kvs[0]["value"])))

    def put(self, key: str, value: str) -> int:
        return int(self.call("kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def delete(self, key: str) -> None:
        assert self.call("kv/deleterange", {"key": b64(key)}).get("deleted") == "1"

    def compact(self, revision: int) -> None:
        self.call("kv/compaction", {"revision": revision, "physical": True})


@pytest.fixture
def own_cluster(cluster: Cluster) -> Any:
    with own_instance(cluster, "core-disrupt") as other:
        yield other


async def test_apiserver_restart_and_forced_410_lose_no_change(own_cluster: Cluster) -> None:
    instance = str(own_cluster.instance)
    ports = json.loads((PROCESS_CACHE / "clusters" / instance / "ports.json").read_text())
    etcd = Etcd(int(ports["etcd"]))
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(own_cluster.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(cfg) as api:
        await install_gadget_crd(api)
        ns = "disrupt"
        await client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))
        )
        await create_gadgets(api, [gadget(ns, f"g{i}") for i in range(6)])
        recorder = Recorder()
        manager = Manager(manager_options(own_cluster.kubeconfig, namespaces=[ns]))
        manager.add_controller(observing_controller(recorder))
        # The reconnect backoff (0.8 s doubling to 30 s, unit-tested) is capped at 2 s here so the two
        # outages do not stack up half-minute waits; everything else runs with the defaults.
        manager.cache.settings.backoff_max = 2.0
        key = {name: ObjectKey(ns, name) for name in ("g0", "g1", "g2", "g3", "g9")}
        async with running(manager):
            await until(lambda: len(recorder.counts) == 6, 30, "initial reconciles")
            informer = manager.cache.informer(GADGET).informers[ns]

            # 1. kube-apiserver killed mid-watch, restarted; changes right after restart all arrive.
            kill_component(instance, "kube-apiserver")
            await asyncio.to_thread(own_cluster.hack, "up")
            await patch_gadget(api, ns, "g0", 7)
            await client.CustomObjectsApi(api).delete_namespaced_custom_object(
                GADGET.group, GADGET.version, ns, GADGET.plural, "g1"
            )
            await create_gadgets(api, [gadget(ns, "g9", size=9)])
            took = await until(
                lambda: (
                    recorder.sizes.get(key["g0"]) == 7
                    and key["g1"] in recorder.sizes
                    and recorder.sizes[key["g1"]] is None
                    and recorder.sizes.get(key["g9"]) == 9
                ),
                90,
                "the edit, the deletion and the creation made after the restart",
            )
            print(f"apiserver restart: changes reconciled {took:.1f} s after they were made")
            assert manager.cache.get(GADGET, ns, "g1") is None

            # 2. Forced 410: while kube-apiserver is down, change objects directly in etcd (the watch
            #    cannot see it) and compact the history; the informer must relist and find both changes.
            relists = informer.relists
            kill_component(instance, "kube-apiserver")
            prefix = f"/registry/{GADGET.group}/{GADGET.plural}/{ns}"
            stored = etcd.get(f"{prefix}/g2")
            stored["spec"]["size"] = 5
            etcd.put(f"{prefix}/g2", json.dumps(stored))
            etcd.delete(f"{prefix}/g3")
            revision = etcd.put("/mcp-operator-test/bump", "x")
            etcd.compact(revision)
            await asyncio.to_thread(own_cluster.hack, "up")
            took = await until(
                lambda: (
                    recorder.sizes.get(key["g2"]) == 5
                    and key["g3"] in recorder.sizes
                    and recorder.sizes[key["g3"]] is None
                ),
                90,
                "changes made behind the watch's back to be found by a relist",
            )
            assert informer.relists > relists, "the 410 must have triggered a relist"
            print(f"forced 410: relisted and reconciled {took:.1f} s after the restart")
            assert manager.cache.get(GADGET, ns, "g3") is None
            assert manager.cache.get(GADGET, ns, "g2")["spec"]["size"] == 5  # type: ignore[index]
