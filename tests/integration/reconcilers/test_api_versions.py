"""Objects written as ``v1alpha1`` and as ``v1beta1`` are both reconciled: the operator watches and
writes ``v1beta1`` (the storage version) and the API server serves every object in it."""

from __future__ import annotations

from tests.support.kube import GROUP, Api
from tests.support.mcpserver import PLURAL, make_ready, ready, server
from tests.support.operator import Operator


async def test_an_object_applied_as_v1alpha1_and_one_as_v1beta1_both_reconcile(
    operator: Operator, kube: Api
) -> None:
    for version in ("v1alpha1", "v1beta1"):
        body = {
            "apiVersion": f"{GROUP}/{version}",
            **server(f"as-{version}"),
            "metadata": {"name": f"as-{version}"},
        }
        body["metadata"]["namespace"] = kube.ns
        await kube.custom.create_namespaced_custom_object(GROUP, version, kube.ns, PLURAL, body)
    for version in ("v1alpha1", "v1beta1"):
        name = f"as-{version}"
        await make_ready(kube, name)
        obj = await ready(kube, name)
        assert obj["status"]["url"] == f"http://{name}.{kube.ns}.svc.cluster.local:8080/mcp"
        deployment = await kube.wait_child("Deployment", name)
        owner = deployment["metadata"]["ownerReferences"][0]
        assert (owner["apiVersion"], owner["kind"], owner["uid"]) == (
            f"{GROUP}/v1beta1",
            "MCPServer",
            obj["metadata"]["uid"],
        )
    # The status the operator wrote through v1beta1 reads the same through v1alpha1.
    old = await kube.custom.get_namespaced_custom_object(GROUP, "v1alpha1", kube.ns, PLURAL, "as-v1alpha1")
    assert old["apiVersion"] == f"{GROUP}/v1alpha1"
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in old["status"]["conditions"])
