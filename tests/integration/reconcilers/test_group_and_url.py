"""A missing MCPGroup does not keep a serving MCPServer from Ready (``kubectl wait`` works), and
``status.url`` appears only once the Service it names exists."""

from __future__ import annotations

from tests.support.kube import Api, condition
from tests.support.mcpserver import PLURAL, make_ready, ready, server
from tests.support.operator import Operator
from tests.support.waiting import eventually


async def test_a_server_whose_group_is_missing_becomes_ready_and_says_so(
    operator: Operator, kube: Api
) -> None:
    await kube.create(PLURAL, server("lonely", groupRef={"name": "nowhere"}))
    await make_ready(kube, "lonely")
    obj = await ready(kube, "lonely")
    refs = condition(obj, "ResolvedRefs") or {}
    assert (refs.get("status"), refs.get("reason")) == ("False", "GroupNotFound"), refs
    assert "MCPGroup 'nowhere' does not exist" in refs["message"]
    assert obj["status"]["phase"] == "Running"

    async def group_event() -> list[str]:
        listed = await kube.core.list_namespaced_event(kube.ns, field_selector="involvedObject.name=lonely")
        return [e.message for e in listed.items if e.type == "Warning" and "nowhere" in (e.message or "")]

    await eventually(group_event, what="a Warning Event naming the missing group")

    # Once the group exists the reference resolves; the server stayed Ready throughout.
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "nowhere"}, "spec": {}})
    await kube.wait_condition(PLURAL, "lonely", "ResolvedRefs", status="True")
    assert (condition(await kube.get(PLURAL, "lonely"), "Ready") or {}).get("status") == "True"


async def test_status_url_is_published_only_once_the_service_exists(operator: Operator, kube: Api) -> None:
    # A missing MCPToolConfig blocks the children: a status is written, but there is no Service to name.
    await kube.create(PLURAL, server("blocked", transport="streamable-http", toolConfigRef={"name": "later"}))
    cond = await kube.wait_condition(PLURAL, "blocked", "ResolvedRefs", reason="ToolConfigNotFound")
    assert cond["status"] == "False"
    obj = await kube.get(PLURAL, "blocked")
    assert obj["status"]["phase"] == "Pending" and "url" not in obj["status"], obj["status"]
    assert await kube.child("Service", "blocked") is None

    await kube.create("mcptoolconfigs", {"kind": "MCPToolConfig", "metadata": {"name": "later"}, "spec": {}})
    await kube.wait_child("Service", "blocked")

    async def published() -> str | None:
        return (await kube.get(PLURAL, "blocked")).get("status", {}).get("url")

    url = await eventually(published, what="status.url once the Service exists")
    assert url == f"http://blocked.{kube.ns}.svc.cluster.local:8080/mcp"
