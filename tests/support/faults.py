"""Fault scenarios on the real control plane: a few hundred MCPServers converging while something breaks.

Every scenario follows the same script (``Scenario``):
1. a few "sentinel" MCPServers converge first; the test marks their workloads ready (as the Deployment
   and StatefulSet controllers would), waits for ``Ready=True`` and remembers their status;
2. the rest are created with bounded concurrency, and the fault is injected once part of them has
   converged (mid-convergence);
3. after the fault ends, the test polls an audit of the namespace until everything has converged, and
   reports the recovery time (end of the fault -> full convergence) with the lost / duplicated counts.

"Converged" (``Audit``): every MCPServer has ``status.observedGeneration == metadata.generation`` and
``Accepted=True``; each of its eight children (stdio transport) exists exactly once with a controller
owner reference to it; no child points at an owner that does not exist; the sentinels' ``Ready=True``
and every condition's ``lastTransitionTime`` seen before the fault are unchanged (no lost status).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from tests.support.kube import GROUP, VERSION, Api, condition
from tests.support.mcpserver import expected_children
from tests.support.waiting import until

PLURAL = "mcpservers"
SERVERS = int(os.environ.get("MCP_OPERATOR_FAULT_SERVERS", "200"))
"""MCPServers per scenario ("a few hundred"); MCP_OPERATOR_FAULT_SERVERS scales it for a quick local run."""
SENTINELS = 8
"""Servers made Ready before the fault; their status must survive it untouched."""
CHILD_KINDS = ("Deployment", "StatefulSet", "Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding")


def server_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MCPServer",
        "metadata": {"name": name},
        "spec": {"image": "ghcr.io/example/mcp:1", "transport": "stdio"},
    }


# ------------------------------------------------------------------------------------------ audit


@dataclass
class Audit:
    """One look at the namespace: what is converged, lost, duplicated or orphaned."""

    servers: int = 0
    converged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    lost_status: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not (self.lost or self.duplicated or self.orphaned or self.lost_status or self.pending)

    def summary(self) -> str:
        def head(items: list[str]) -> str:
            return f"{len(items)}" + (f" (e.g. {', '.join(items[:3])})" if items else "")

        return (
            f"{self.converged}/{self.servers} converged; lost {head(self.lost)}; "
            f"duplicated {head(self.duplicated)}; orphaned {head(self.orphaned)}; "
            f"lost status {head(self.lost_status)}; not converged {head(self.pending)}"
        )


async def list_raw(call: Callable[..., Awaitable[Any]], *args: Any) -> list[dict[str, Any]]:
    """A list call's items as plain dicts (no model conversion: thousands of objects per poll)."""
    response = await call(*args, _preload_content=False)
    items: list[dict[str, Any]] = json.loads(await response.read())["items"]
    return items


async def audit(
    kube: Api, names: set[str], remembered: dict[str, dict[str, Any]], sentinels: set[str]
) -> Audit:
    """Compare the namespace with what ``names`` should have produced.

    ``remembered``: per server, its conditions (type -> lastTransitionTime) seen before the fault;
    ``sentinels``: servers that were Ready before the fault and must still be.
    """
    ns = kube.ns
    listers: dict[str, Callable[..., Awaitable[Any]]] = {
        "Deployment": kube.apps.list_namespaced_deployment,
        "StatefulSet": kube.apps.list_namespaced_stateful_set,
        "Service": kube.core.list_namespaced_service,
        "ConfigMap": kube.core.list_namespaced_config_map,
        "ServiceAccount": kube.core.list_namespaced_service_account,
        "Role": kube.rbac.list_namespaced_role,
        "RoleBinding": kube.rbac.list_namespaced_role_binding,
    }
    servers = await list_raw(kube.custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
    kinds = list(listers)
    lists = await asyncio.gather(*(list_raw(listers[k], ns) for k in kinds))
    result = Audit(servers=len(servers))
    by_uid = {s["metadata"]["uid"]: s["metadata"]["name"] for s in servers}
    present = set(by_uid.values())
    result.lost += [f"MCPServer {n}" for n in sorted(names - present)]
    owned: Counter[tuple[str, str, str]] = Counter()  # (owner name, kind, child name)
    for kind, items in zip(kinds, lists, strict=True):
        for obj in items:
            meta = obj["metadata"]
            refs = [r for r in meta.get("ownerReferences") or [] if r.get("kind") == "MCPServer"]
            if not refs:
                continue  # not ours (kube-root-ca.crt, the default ServiceAccount, ...)
            controllers = [r for r in refs if r.get("controller")]
            if len(refs) > 1 or len(controllers) != 1:
                result.duplicated.append(f"{kind} {meta['name']} has {len(refs)} MCPServer owner references")
            for ref in refs:
                owner = by_uid.get(ref["uid"])
                if owner is None:
                    result.orphaned.append(f"{kind} {meta['name']} (owner uid {ref['uid'][:8]} is gone)")
                else:
                    owned[(owner, kind, meta["name"])] += 1
    for server in servers:
        name = server["metadata"]["name"]
        want = expected_children(name)
        have = {(kind, child) for (owner, kind, child) in owned if owner == name}
        result.lost += [f"{kind} {child}" for kind, child in sorted(want - have)]
        result.duplicated += [f"{kind} {child} (unexpected child of {name})" for kind, child in have - want]
        result.duplicated += [
            f"{kind} {child} x{count}"
            for (owner, kind, child), count in owned.items()
            if owner == name and count > 1
        ]
        status = server.get("status") or {}
        accepted = condition(server, "Accepted")
        if (
            status.get("observedGeneration") != server["metadata"].get("generation")
            or not accepted
            or accepted.get("status") != "True"
        ):
            result.pending.append(name)
        else:
            result.converged += 1
        for type_, when in remembered.get(name, {}).items():
            now = condition(server, type_)
            if now is None or now.get("lastTransitionTime") != when:
                result.lost_status.append(f"{name} {type_} (was {when}, now {now and now.get('status')})")
        if name in sentinels:
            ready = condition(server, "Ready")
            if not ready or ready.get("status") != "True":
                result.lost_status.append(f"{name} Ready is no longer True")
    return result


# -------------------------------------------------------------------------------------- scenario


class Scenario:
    """Creates the servers, finds the moment to inject a fault, and measures the recovery."""

    def __init__(self, name: str, kube: Api, *, servers: int = SERVERS) -> None:
        self.name = name
        self.kube = kube
        self.names = [f"s{i:03d}" for i in range(servers)]
        self.sentinels = set(self.names[:SENTINELS])
        self.created: set[str] = set()
        self.ready: set[str] = set()
        """Servers whose Ready=True was seen; it must stay True."""
        self.remembered: dict[str, dict[str, Any]] = {}
        self.fault_ended = 0.0
        self.last: Audit | None = None
        self.round = 1
        """Each spec change bumps every non-sentinel's generation by one: round k = generation k."""
        self.edits: asyncio.Task[None] | None = None
        """Creations or patches in flight (they retry through the fault)."""

    async def create(self, names: list[str], concurrency: int = 16) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(name: str) -> None:
            async with sem:
                await retrying(
                    lambda: self.kube.custom.create_namespaced_custom_object(
                        GROUP, VERSION, self.kube.ns, PLURAL, server_body(name)
                    ),
                    created_is_done=True,
                )
                self.created.add(name)

        await asyncio.gather(*(one(n) for n in names))

    async def ready_sentinels(self, within: float = 120) -> None:
        """Create the sentinels, let them converge, mark their workloads ready, wait for Ready=True."""
        names = sorted(self.sentinels)
        await self.create(names)
        await self.poll(
            lambda a: a.converged == len(names) and not a.lost, within, "the sentinels to converge"
        )
        for name in names:
            await self.kube.mark_ready("Deployment", name)
            await self.kube.mark_ready("StatefulSet", f"{name}-server")

        async def all_ready() -> bool:
            listed = await list_raw(
                self.kube.custom.list_namespaced_custom_object, GROUP, VERSION, self.kube.ns, PLURAL
            )
            ready = [o for o in listed if (condition(o, "Ready") or {}).get("status") == "True"]
            return len(ready) == len(names)

        await until(all_ready, within, "the sentinels to be Ready")
        self.ready = set(self.sentinels)

    def start_rest(self) -> None:
        """Create the remaining servers in the background (the fault may hit while they are created)."""
        rest = [n for n in self.names if n not in self.sentinels]
        self.edits = asyncio.create_task(self.create(rest))

    def start_bump(self, round_: int) -> None:
        """In the background, a spec change (a new generation: ``round_``) on every server but the
        sentinels, whose Ready must stay; the fault may hit while the patches are sent."""
        self.round = round_
        patch = {"spec": {"env": [{"name": "ROUND", "value": str(round_)}]}}
        sem = asyncio.Semaphore(16)

        async def one(name: str) -> None:
            async with sem:
                await retrying(lambda: self.kube.patch(PLURAL, name, patch))

        async def all_() -> None:
            await asyncio.gather(*(one(n) for n in self.names if n not in self.sentinels))

        self.edits = asyncio.create_task(all_())

    async def wait_mid_convergence(self, within: float = 120) -> None:
        """Wait until a fifth of the servers being created or changed converged, but not all: that is
        when the fault goes in. Also remembers the status seen at that moment."""
        total = len(self.names) - SENTINELS
        threshold = total // 5
        deadline = time.monotonic() + within
        while (converged := await self.converged(self.round)) < threshold:
            assert time.monotonic() < deadline, (
                f"[{self.name}] {converged}/{threshold} converged after {within} s"
            )
            await asyncio.sleep(0.2)
        print(f"\nFAULT {self.name}: injected with {converged}/{total} of the changed servers converged")
        assert converged < total, f"[{self.name}] converged before the fault could go in"
        await self.remember()

    async def remember(self) -> None:
        """Remember the conditions' transition times of every server that has status now."""
        listed = await list_raw(
            self.kube.custom.list_namespaced_custom_object, GROUP, VERSION, self.kube.ns, PLURAL
        )
        for obj in listed:
            conds = (obj.get("status") or {}).get("conditions") or []
            self.remembered[obj["metadata"]["name"]] = {c["type"]: c["lastTransitionTime"] for c in conds}

    def end_fault(self) -> None:
        self.fault_ended = time.monotonic()

    async def audit(self) -> Audit:
        self.last = await audit(self.kube, self.created, self.remembered, self.ready)
        return self.last

    async def converged(self, round_: int | None = None) -> int:
        """How many servers look converged by their own status (one LIST: cheap enough to poll);
        with ``round_``, only the non-sentinels converged at that generation."""
        listed = await list_raw(
            self.kube.custom.list_namespaced_custom_object, GROUP, VERSION, self.kube.ns, PLURAL
        )
        return sum(
            1
            for o in listed
            if (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
            and (condition(o, "Accepted") or {}).get("status") == "True"
            and (
                round_ is None
                or (o["metadata"]["name"] not in self.sentinels and o["metadata"]["generation"] == round_)
            )
        )

    async def poll(
        self, done: Callable[[Audit], bool], within: float, what: str, *, servers_converged: int = 0
    ) -> Audit:
        """Poll the full audit until ``done``; it runs only once ``servers_converged`` servers look
        converged by their status (listing 1,600 children twice a second would slow the API server)."""
        deadline = time.monotonic() + within
        while True:
            if servers_converged == 0 or await self.converged() >= servers_converged:
                found = await self.audit()
                if done(found):
                    return found
            if time.monotonic() > deadline:
                found = await self.audit()
                raise AssertionError(
                    f"[{self.name}] timed out after {within} s waiting for {what}: {found.summary()}"
                )
            await asyncio.sleep(0.5)

    async def recover(self, within: float = 180) -> float:
        """Poll until fully converged; print and return the recovery time (end of fault -> converged)."""
        assert self.fault_ended, "call end_fault() when the fault is over"
        if self.edits is not None:
            await self.edits
        try:
            found = await self.poll(
                lambda a: a.done and a.servers == len(self.names),
                within,
                "full convergence",
                servers_converged=len(self.names),
            )
        finally:
            if self.last is not None:
                print(f"\nFAULT {self.name}: {self.last.summary()}")
        took = time.monotonic() - self.fault_ended
        lost = len(found.lost) + len(found.lost_status)
        duplicated = len(found.duplicated) + len(found.orphaned)
        print(
            f"FAULT {self.name}: servers={found.servers} children={found.servers * 8} "
            f"lost={lost} duplicated={duplicated} recovery={took:.1f}s"
        )
        assert (lost, duplicated) == (0, 0), f"[{self.name}] after {took:.1f} s: {found.summary()}"
        return took


async def retrying(call: Callable[[], Awaitable[Any]], *, created_is_done: bool = False) -> None:
    """The test's own writes go on through the fault: retry what the outage refused (a create that
    landed before its answer was lost comes back as 409 Already Exists)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            await call()
            return
        except client.ApiException as exc:
            if created_is_done and exc.status == 409:
                return
            if exc.status < 500 and exc.status not in (0, 429):
                raise
            error: Exception = exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"a write kept failing for 120 s: {error!r}") from error
        await asyncio.sleep(0.5)
