"""EmbeddingServer on the real kube-apiserver: ToolHive's defaults become a TEI StatefulSet and Service, the
phase follows the StatefulSet (set here as its controller would), a model cache is a volume claim template,
bad input is refused naming the field, and a VirtualMCPServer's embeddingServerRef waits for it to be
Ready, then puts its URL into the gateway's optimizer."""

from __future__ import annotations

from typing import Any

from tests.integration.reconcilers.test_server_pod_status import kubelet_reports, server_pod
from tests.integration.reconcilers.test_virtualmcpserver import config_of, group, vmcp
from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.waiting import eventually

PLURAL = "embeddingservers"
DEFAULT_MODEL = "BAAI/bge-small-en-v1.5"


def embedding(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "EmbeddingServer", "metadata": {"name": name}, "spec": spec}


async def phase_is(kube: Api, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        return obj if (obj.get("status") or {}).get("phase") == phase else None

    found: dict[str, Any] = await eventually(check, what=f"EmbeddingServer {name} {phase}")
    return found


async def warning_events(kube: Api, name: str) -> list[str]:
    listed = await kube.core.list_namespaced_event(kube.ns, field_selector=f"involvedObject.name={name}")
    return [e.message for e in listed.items if e.type == "Warning"]


def only_container(sts: dict[str, Any]) -> dict[str, Any]:
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "embedding"
    return container


async def test_defaults_run_tei_as_a_non_root_statefulset_and_the_phase_follows_it(
    operator: Operator, kube: Api
) -> None:
    await kube.create(PLURAL, embedding("emb"))  # ToolHive's quickstart: spec: {}
    stored = await kube.get(PLURAL, "emb")
    assert stored["spec"]["model"] == DEFAULT_MODEL  # the CRD's defaults, as kubectl shows them
    assert stored["spec"]["image"] == "ghcr.io/huggingface/text-embeddings-inference:cpu-latest"
    assert (stored["spec"]["port"], stored["spec"]["replicas"]) == (8080, 1)

    sts = await kube.wait_child("StatefulSet", "emb")
    assert sts["metadata"]["ownerReferences"][0]["name"] == "emb"
    assert sts["spec"]["replicas"] == 1 and "volumeClaimTemplates" not in sts["spec"]
    container = only_container(sts)
    assert container["args"] == ["--model-id", DEFAULT_MODEL, "--port", "8080"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]} == {
        "/data": "model-cache",
        "/tmp": "tmp",
    }
    assert {"name": "HF_HOME", "value": "/data"} in container["env"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["automountServiceAccountToken"] is False
    assert {"name": "model-cache", "emptyDir": {}} in pod["volumes"]
    service = await kube.wait_child("Service", "emb")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]

    obj = await phase_is(kube, "emb", "Pending")
    url = f"http://emb.{kube.ns}.svc.cluster.local:8080"
    await eventually(lambda: _url_is(kube, "emb", url), what="status.url once the Service exists")

    await kube.mark_ready("StatefulSet", "emb", ready=0)  # a pod runs, TEI downloads the model
    obj = await phase_is(kube, "emb", "Downloading")
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    await kube.mark_ready("StatefulSet", "emb", ready=1)
    obj = await phase_is(kube, "emb", "Ready")
    assert obj["status"]["readyReplicas"] == 1 and obj["status"]["url"] == url
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "True" and DEFAULT_MODEL in ready["message"]

    # Converged: a reconcile caused by an unrelated edit sends no write at all.
    writes = await operator.settled()
    reconciles = operator.reconciles("embeddingserver")
    await kube.patch(PLURAL, "emb", {"metadata": {"annotations": {"team": "a"}}})
    await eventually(
        lambda: _more(operator.reconciles("embeddingserver"), reconciles), what="a reconcile after the edit"
    )
    assert operator.writes() == writes


async def _url_is(kube: Api, name: str, url: str) -> bool:
    return ((await kube.get(PLURAL, name)).get("status") or {}).get("url") == url


async def _more(now: float, before: float) -> bool:
    return now > before


async def test_an_image_that_cannot_be_pulled_fails_naming_the_pod(operator: Operator, kube: Api) -> None:
    await kube.create(PLURAL, embedding("tei", image="registry.example/tei:missing"))
    pod = await server_pod(kube, "tei", statefulset="tei")
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    await kubelet_reports(kube, pod, waiting, container="embedding")
    obj = await phase_is(kube, "tei", "Failed")
    ready = condition(obj, "Ready")
    assert ready is not None and ready["reason"] == "ImagePullFailed"
    assert f"server pod {kube.ns}/tei-0" in ready["message"] and "check spec.image" in ready["message"]
    await eventually(lambda: _warned(kube, "tei", "cannot be pulled"), what="a Warning Event on the pull")


async def test_a_model_cache_is_a_claim_template_and_a_change_replaces_the_statefulset(
    operator: Operator, kube: Api
) -> None:
    cache = {"enabled": True, "size": "20Gi", "accessMode": "ReadWriteMany", "storageClassName": "fast"}
    overrides = {
        "persistentVolumeClaim": {"annotations": {"backup": "no"}},
        "service": {"labels": {"t": "a"}},
    }
    await kube.create(PLURAL, embedding("cached", modelCache=cache, resourceOverrides=overrides, replicas=2))
    sts = await kube.wait_child("StatefulSet", "cached")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "model-cache" and claim["metadata"]["annotations"] == {"backup": "no"}
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert sts["spec"]["replicas"] == 2
    assert all(
        "emptyDir" not in v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "model-cache"
    )
    assert (await kube.wait_child("Service", "cached"))["metadata"]["labels"]["t"] == "a"

    # Claim templates cannot change: the StatefulSet is replaced with the new one.
    uid = sts["metadata"]["uid"]
    await kube.patch(PLURAL, "cached", {"spec": {"modelCache": {"size": "30Gi"}}})

    async def replaced() -> dict[str, Any] | None:
        now = await kube.child("StatefulSet", "cached")
        return now if now is not None and now["metadata"]["uid"] != uid else None

    sts = await eventually(replaced, what="a new StatefulSet with the new claim template")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "30Gi"


async def test_bad_input_is_refused_naming_the_field_and_a_missing_token_secret_waits(
    operator: Operator, kube: Api
) -> None:
    await kube.create(PLURAL, embedding("bad", args=["--port", "9000"]))
    refused = await kube.wait_condition(PLURAL, "bad", "Accepted", status="False", reason="InvalidSpec")
    assert "spec.args[0]: '--port' is set by the operator from spec.port" in refused["message"]
    assert (await phase_is(kube, "bad", "Failed"))["status"]["message"] == refused["message"]
    await eventually(lambda: _warned(kube, "bad", "spec.args[0]"), what="a Warning Event naming spec.args[0]")
    assert await kube.child("StatefulSet", "bad") is None
    await operator.settled()
    reconciles = operator.reconciles("embeddingserver")
    await operator.settled()  # a quiet window: no write and no reconcile for two seconds
    assert operator.reconciles("embeddingserver") == reconciles, "an invalid spec is not retried"

    token = {"name": "hf", "key": "token"}
    await kube.create(PLURAL, embedding("private", hfTokenSecretRef=token))
    refs = await kube.wait_condition(
        PLURAL, "private", "ResolvedRefs", status="False", reason="SecretNotFound"
    )
    assert "Secret 'hf' does not exist" in refs["message"]
    assert await kube.child("StatefulSet", "private") is None, "no pod that cannot start"
    await kube.create_secret("hf", {"token": "hf_x"})
    container = only_container(await kube.wait_child("StatefulSet", "private"))
    hf_token = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert hf_token["valueFrom"]["secretKeyRef"] == token


async def test_a_name_another_workload_holds_is_a_name_conflict_never_taken_over(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpservers", server("dup"))  # its Service is "dup" too
    service = await kube.wait_child("Service", "dup")
    await kube.create(PLURAL, embedding("dup"))
    refs = await kube.wait_condition(PLURAL, "dup", "ResolvedRefs", status="False", reason="NameConflict")
    assert "Service 'dup' already belongs to MCPServer 'dup'" in refs["message"]
    owner = (await kube.wait_child("Service", "dup"))["metadata"]["ownerReferences"]
    assert owner == service["metadata"]["ownerReferences"]
    assert await kube.child("StatefulSet", "dup") is None, "nothing of it is written while the name is taken"


async def _warned(kube: Api, name: str, text: str) -> bool:
    return any(text in message for message in await warning_events(kube, name))


async def optimizer_of(kube: Api, name: str) -> dict[str, Any] | None:
    optimizer: dict[str, Any] | None = ((await config_of(kube, name)) or {}).get("optimizer")
    return optimizer


async def test_a_gateway_waits_for_its_embedding_server_then_its_optimizer_uses_it(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create("virtualmcpservers", vmcp("gw", "team", embeddingServerRef={"name": "emb"}))
    refs = await kube.wait_condition(
        "virtualmcpservers", "gw", "ResolvedRefs", status="False", reason="EmbeddingServerNotFound"
    )
    assert "EmbeddingServer 'emb' does not exist" in refs["message"]
    assert await kube.child("ConfigMap", "gw-vmcp") is None, "no gateway without the optimizer it asks for"

    await kube.create(PLURAL, embedding("emb"))
    refs = await kube.wait_condition(
        "virtualmcpservers", "gw", "ResolvedRefs", status="False", reason="EmbeddingServerNotReady"
    )
    assert "EmbeddingServer 'emb' is Pending" in refs["message"]
    assert await kube.child("Deployment", "gw") is None

    await kube.mark_ready("StatefulSet", "emb")
    optimizer = await eventually(
        lambda: optimizer_of(kube, "gw"), what="the gateway config with its optimizer"
    )
    url = f"http://emb.{kube.ns}.svc.cluster.local:8080"
    assert optimizer == {
        "maxToolsToReturn": 8,
        "embeddingService": url,
        "embeddingProvider": "tei",
        "embeddingServiceTimeout": "30s",
    }, "the optimizer on with ToolHive's defaults, the EmbeddingServer as its service"
    await kube.wait_condition("virtualmcpservers", "gw", "ResolvedRefs", status="True")

    # The gateway's own optimizer settings are kept.
    await kube.patch("virtualmcpservers", "gw", {"spec": {"config": {"optimizer": {"maxToolsToReturn": 3}}}})

    async def kept() -> dict[str, Any] | None:
        found = await optimizer_of(kube, "gw")
        return found if found and found.get("maxToolsToReturn") == 3 else None

    assert (await eventually(kept, what="maxToolsToReturn 3"))["embeddingService"] == url

    writes = await operator.settled()
    reconciles = operator.reconciles("virtualmcpserver")
    await kube.patch("virtualmcpservers", "gw", {"metadata": {"annotations": {"team": "a"}}})
    await eventually(
        lambda: _more(operator.reconciles("virtualmcpserver"), reconciles), what="a reconcile after the edit"
    )
    assert operator.writes() == writes
