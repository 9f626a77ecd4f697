"""MCPServer lifecycle on the real kube-apiserver: invalid specs, missing references, repair, deletion,
coexistence with other writers, and steady state at scale."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.reconcilers.mcpserver_build import Names
from tests.support.cluster import Cluster
from tests.support.kube import GROUP, VERSION, Api, condition
from tests.support.mcpserver import PLURAL, expected_children, make_ready, ready, server
from tests.support.operator import Operator, run_operator
from tests.support.waiting import eventually


async def events_for(kube: Api, name: str) -> list[tuple[str, str, str]]:
    listed = await kube.core.list_namespaced_event(kube.ns, field_selector=f"involvedObject.name={name}")
    return [(e.type, e.reason, e.message) for e in listed.items]


async def test_invalid_spec_is_reported_once_without_children_or_hot_loop(
    operator: Operator, kube: Api
) -> None:
    name = "x" * 50  # "<name>-server" would pass the StatefulSet's 52: shortened once the spec is fixed
    await kube.create(PLURAL, server(name, podTemplateSpec={"spec": {"containers": [{"image": "sidecar"}]}}))

    async def rejected() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        cond = condition(obj, "Accepted")
        return obj if cond and cond["status"] == "False" else None

    obj = await eventually(rejected, what="Accepted=False")
    accepted = condition(obj, "Accepted")
    assert accepted is not None and accepted["reason"] == "InvalidSpec"
    assert "spec.podTemplateSpec.spec.containers[0].name" in accepted["message"]
    assert obj["status"]["phase"] == "Failed"

    async def warned() -> bool:
        return ("Warning", "InvalidSpec") in [(t, r) for t, r, _ in await events_for(kube, name)]

    await eventually(warned, what="the InvalidSpec event")
    names = Names(name)
    for kind, child in [
        ("Deployment", names.proxy),
        ("ConfigMap", names.config),
        ("StatefulSet", names.server),
    ]:
        assert await kube.child(kind, child) is None

    before = operator.reconciles()
    await asyncio.sleep(60)
    assert operator.reconciles() - before <= 3, "an invalid spec is being retried in a loop"

    # Fixing the spec (a new generation) is reconciled right away.
    await kube.patch(PLURAL, name, {"spec": {"podTemplateSpec": None}})
    assert len(names.server) == 52 and names.server != f"{name}-server"
    await eventually(lambda: kube.child("StatefulSet", names.server), what="the shortened StatefulSet")

    async def accepted_again() -> bool:
        got = condition(await kube.get(PLURAL, name), "Accepted")
        return bool(got and got["status"] == "True")

    await eventually(accepted_again, what="Accepted=True")


async def test_missing_references_then_created_make_it_ready_untouched(operator: Operator, kube: Api) -> None:
    name = "refs"
    await kube.create(
        PLURAL,
        server(
            name,
            toolConfigRef={"name": "tc"},
            groupRef={"name": "team"},
            secrets=[{"name": "creds", "key": "token", "targetEnvName": "TOKEN"}],
        ),
    )

    async def unresolved() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        cond = condition(obj, "ResolvedRefs")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(unresolved, what="ResolvedRefs=False")
    for text in ("MCPToolConfig 'tc'", "MCPGroup 'team'", "Secret 'creds'"):
        assert text in cond["message"]
    assert (await kube.get(PLURAL, name))["status"]["phase"] == "Pending"
    assert await kube.child("Deployment", name) is None  # no proxy without its tool filter
    generation = (await kube.get(PLURAL, name))["metadata"]["generation"]

    await kube.create("mcptoolconfigs", {"kind": "MCPToolConfig", "metadata": {"name": "tc"}, "spec": {}})
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.core.create_namespaced_secret(
        kube.ns, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"token": "s3cr3t"})
    )
    await make_ready(kube, name)
    await ready(kube, name)
    # A missing group does not hold Ready back (the server serves on its own): wait for the references.
    await kube.wait_condition(PLURAL, name, "ResolvedRefs", status="True")
    obj = await kube.get(PLURAL, name)
    assert obj["metadata"]["generation"] == generation, "the MCPServer itself was not touched"
    sts = await kube.child("StatefulSet", f"{name}-server")
    env = sts["spec"]["template"]["spec"]["containers"][0]["env"]  # type: ignore[index]
    assert env == [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]
    config = (await kube.child("ConfigMap", f"{name}-proxy"))["data"]["proxy.json"]  # type: ignore[index]
    assert "s3cr3t" not in config


async def test_deleted_or_edited_children_are_repaired_and_foreign_fields_survive(
    operator: Operator, kube: Api
) -> None:
    name = "repair"
    await kube.create(PLURAL, server(name, transport="streamable-http"))
    await eventually(lambda: kube.child("Service", f"{name}-server"), what="children")

    await kube.delete_child("ConfigMap", f"{name}-proxy")
    await kube.delete_child("Service", name)
    await eventually(lambda: kube.child("ConfigMap", f"{name}-proxy"), within=15, what="ConfigMap back")
    await eventually(lambda: kube.child("Service", name), within=15, what="Service back")

    # Another writer scales the Deployment (an HPA: spec.replicas is unset), restarts it with kubectl
    # and adds its own label; an edit of a field we own is put back.
    await kube.apps.patch_namespaced_deployment(
        name,
        kube.ns,
        {
            "metadata": {"labels": {"team": "payments"}},
            "spec": {
                "replicas": 3,
                "template": {
                    "metadata": {
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-25T00:00:00Z"}
                    },
                    "spec": {"containers": [{"name": "proxy", "image": "tampered:1"}]},
                },
            },
        },
        _content_type="application/strategic-merge-patch+json",
    )

    async def repaired() -> dict[str, Any] | None:
        dep = await kube.child("Deployment", name)
        ok = dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] != "tampered:1"
        return dep if ok else None

    dep = await eventually(repaired, within=15, what="image repaired")
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"]["team"] == "payments"
    assert dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]


@pytest.mark.timeout(420)  # the garbage collector may first digest earlier tests' leftovers (below)
async def test_deleting_the_server_removes_every_child(
    operator: Operator, kube: Api, controller_manager: None
) -> None:
    name = "gone"
    await kube.create(PLURAL, server(name))
    await eventually(lambda: kube.child("RoleBinding", f"{name}-proxy"), what="children")
    await kube.delete(PLURAL, name)

    remaining: list[str] = []

    async def all_gone() -> bool:
        remaining.clear()
        for kind, child in sorted(expected_children(name)):
            if await kube.child(kind, child) is not None:
                remaining.append(f"{kind}/{child}")
        return not remaining

    # kube-controller-manager starts for this test and first works through what earlier tests left in
    # namespaces deleted while it was not running (the fault tests leave ~1,800 objects per scenario): its
    # garbage collector built its graph of all of them before reaching these children, which took more
    # than 60 s once on 2 busy cores.
    try:
        await eventually(all_gone, within=300, what="garbage collection of every child")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still there: {remaining}") from None


async def test_stdio_replicas_capped_and_zero_stops(operator: Operator, kube: Api) -> None:
    name = "scale"
    await kube.create(PLURAL, server(name, transport="streamable-http", replicas=2, backendReplicas=3))
    dep = await eventually(lambda: kube.child("Deployment", name), what="Deployment")
    sts = await eventually(lambda: kube.child("StatefulSet", f"{name}-server"), what="StatefulSet")
    assert (dep["spec"]["replicas"], sts["spec"]["replicas"]) == (2, 3)

    await kube.patch(PLURAL, name, {"spec": {"replicas": 0}})

    async def stopped() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        return obj if obj.get("status", {}).get("phase") == "Stopped" else None

    obj = await eventually(stopped, what="phase Stopped")
    assert condition(obj, "Ready")["reason"] == "Stopped"  # type: ignore[index]
    assert (await kube.child("Deployment", name))["spec"]["replicas"] == 0  # type: ignore[index]
    assert (await kube.child("StatefulSet", f"{name}-server"))["spec"]["replicas"] == 0  # type: ignore[index]


@pytest.mark.slow
async def test_hundred_servers_converge_then_zero_writes(
    mcp_crds: Cluster, namespace: str, kube: Api
) -> None:
    names = [f"bulk-{i:03d}" for i in range(100)]
    sem = asyncio.Semaphore(16)

    async def create(name: str) -> None:
        async with sem:
            await kube.create(PLURAL, server(name, transport="streamable-http"))

    await asyncio.gather(*(create(n) for n in names))
    started = time.monotonic()
    async with run_operator(mcp_crds.kubeconfig, namespace, resync_period=1.0) as op:

        async def converged() -> bool:
            listed = await kube.custom.list_namespaced_custom_object(GROUP, VERSION, kube.ns, PLURAL)
            return sum(1 for o in listed["items"] if condition(o, "Accepted")) == len(names)

        await eventually(converged, within=300, what="100 MCPServers reconciled")
        convergence = time.monotonic() - started
        # Let the status writes' own watch events come back and be reconciled (no write for 5 s).
        writes_before = await op.settled(quiet=5, within=120)
        await op.resync_window(4)  # four resyncs of every MCPServer (every 1 s)
        writes_after = op.writes()
    print(f"100 MCPServers converged in {convergence:.1f} s with {writes_before:.0f} writes")
    assert writes_after == writes_before, f"{writes_after - writes_before:.0f} writes in steady state"


async def test_a_restarted_operator_does_not_reapply_the_children_it_applied(
    mcp_crds: Cluster, namespace: str, kube: Api
) -> None:
    """A restart, a new leader or an upgrade that changes nothing re-applies only what it cannot check
    from its cache (the two workloads, whose pod spec the cache drops) and the status: 3 writes per
    MCPServer instead of its 8 children and status (at 20 qps, 1,000 servers took 7.5 minutes)."""
    names = ["restart-a", "restart-b", "restart-c"]
    for name in names:
        await kube.create(PLURAL, server(name))

    async def accepted() -> bool:
        listed = await kube.custom.list_namespaced_custom_object(
            "mcp-operator.dev", "v1alpha1", kube.ns, PLURAL
        )
        return sum(1 for o in listed["items"] if condition(o, "Accepted")) == len(names)

    async with run_operator(mcp_crds.kubeconfig, namespace) as first:
        await eventually(accepted, what="the MCPServers reconciled")
        assert await first.settled() >= 9 * len(names)  # created: 8 children and a status each
    versions = {
        name: (await kube.child("ConfigMap", Names(name).config))["metadata"]["resourceVersion"]  # type: ignore[index]
        for name in names
    }
    async with run_operator(mcp_crds.kubeconfig, namespace) as second:

        async def reconciled() -> bool:
            return second.reconciles() >= len(names)

        await eventually(reconciled, what="every MCPServer reconciled")
        rewritten = await second.settled()
    assert rewritten == 3 * len(names), f"{rewritten:.0f} writes by the restarted operator"
    for name in names:
        child = await kube.child("ConfigMap", Names(name).config)
        assert child is not None and child["metadata"]["resourceVersion"] == versions[name]
