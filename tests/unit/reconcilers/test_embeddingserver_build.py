"""Pure builders of an EmbeddingServer's children, its rules, and the optimizer section it gives a gateway
(no event loop, no cluster).

Regenerate the golden file after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/reconcilers``
and review the diff.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.embeddingserver import EmbeddingServer
from api.validation import parse_and_validate
from api.virtualmcpserver import VirtualMCPServer
from controller.reconcilers.embeddingserver_build import (
    MODEL_CACHE_ANNOTATION,
    build_children,
    service_url,
)
from controller.reconcilers.virtualmcpserver_build import build_optimizer
from tests.support.builders import SETTINGS, assert_matches_golden, owner_ref

OWNER = owner_ref("EmbeddingServer", "emb", "0000-3333")


def raw(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": "EmbeddingServer",
        "metadata": {"name": "emb", "namespace": "team", "generation": 1},
        "spec": spec,
    }


def make(**spec: Any) -> EmbeddingServer:
    return EmbeddingServer.model_validate(raw(**spec))


def statefulset(server: EmbeddingServer) -> dict[str, Any]:
    sts, service = build_children(server, OWNER)
    assert (sts["kind"], service["kind"]) == ("StatefulSet", "Service")
    return sts


FULL: dict[str, Any] = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "hfTokenSecretRef": {"name": "hf", "key": "token"},
    "port": 8090,
    "replicas": 2,
    "args": ["--max-batch-requests", "64"],
    "env": [{"name": "RUST_LOG", "value": "info"}],
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
    "modelCache": {"size": "20Gi", "storageClassName": "fast"},
    "podTemplateSpec": {"spec": {"nodeSelector": {"workload": "ml"}}},
    "resourceOverrides": {
        "statefulSet": {"annotations": {"a": "1"}, "podTemplateMetadataOverrides": {"labels": {"v": "1"}}},
        "service": {"annotations": {"lb": "nlb"}},
        "persistentVolumeClaim": {"labels": {"backup": "no"}},
    },
}


def test_golden_children() -> None:
    assert_matches_golden(build_children(make(**FULL), OWNER), "embeddingserver-full.yaml")


def test_the_url_is_the_services_with_the_port() -> None:
    assert service_url(make(port=9000), SETTINGS) == "http://emb.team.svc.cluster.local:9000"


def test_without_a_model_cache_the_cache_is_an_empty_dir_on_the_writable_data_volume() -> None:
    for spec in ({}, {"modelCache": {"enabled": False, "size": "5Gi"}}):
        sts = statefulset(make(**spec))
        assert "volumeClaimTemplates" not in sts["spec"]
        assert {"name": "model-cache", "emptyDir": {}} in sts["spec"]["template"]["spec"]["volumes"]


def test_the_model_cache_annotation_changes_only_with_the_claim_templates() -> None:
    def digest(**spec: Any) -> str:
        return str(statefulset(make(**spec))["metadata"]["annotations"][MODEL_CACHE_ANNOTATION])

    assert digest() == digest(replicas=3, model="other") == digest(modelCache={"enabled": False})
    assert digest(modelCache={}) != digest()
    assert digest(modelCache={"size": "20Gi"}) != digest(modelCache={})


def test_a_pod_template_cannot_change_the_image_or_args_and_env_of_the_same_name_replaces_ours() -> None:
    patch = {"spec": {"containers": [{"name": "embedding", "image": "evil", "args": ["--port", "1"]}]}}
    sts = statefulset(make(podTemplateSpec=patch, env=[{"name": "HF_HOME", "value": "/cache"}]))
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/huggingface/text-embeddings-inference:cpu-latest"
    assert container["args"] == ["--model-id", "BAAI/bge-small-en-v1.5", "--port", "8080"]
    assert [e for e in container["env"] if e["name"] == "HF_HOME"] == [{"name": "HF_HOME", "value": "/cache"}]


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"args": ["--model-id=x"]}, "spec.args[0]", "set by the operator from spec.model"),
        ({"args": ["-x", "--port", "1"]}, "spec.args[1]", "set by the operator from spec.port"),
        (
            {"hfTokenSecretRef": {"name": "hf", "key": "t"}, "env": [{"name": "HF_TOKEN", "value": "x"}]},
            "spec.env[0].name",
            "HF_TOKEN comes from spec.hfTokenSecretRef",
        ),
        (
            {"resourceOverrides": {"service": {"labels": {"app.kubernetes.io/name": "x"}}}},
            "spec.resourceOverrides.service.labels[app.kubernetes.io/name]",
            "is set by the operator",
        ),
        (
            {"podTemplateSpec": {"spec": {"containers": [{}]}}},
            "spec.podTemplateSpec.spec.containers[0].name",
            "",
        ),
        ({"port": 0}, "spec.port", ""),
        ({"replicas": 0}, "spec.replicas", ""),
        ({"modelCache": {"accessMode": "ReadWriteAll"}}, "spec.modelCache.accessMode", ""),
        ({"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy", ""),
    ],
)
def test_bad_input_is_refused_naming_the_field(spec: dict[str, Any], field: str, text: str) -> None:
    _, problems = parse_and_validate(raw(**spec))
    assert [p.field for p in problems] == [field]
    assert text in problems[0].message


def test_toolhives_examples_are_valid() -> None:
    for spec in ({}, FULL):
        assert parse_and_validate(raw(**spec))[1] == []


def gateway(optimizer: dict[str, Any] | None) -> VirtualMCPServer:
    spec: dict[str, Any] = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}}
    spec["embeddingServerRef"] = {"name": "emb"}
    if optimizer is not None:
        spec["config"] = {"optimizer": optimizer}
    return VirtualMCPServer.model_validate({"metadata": {"name": "gw", "namespace": "team"}, "spec": spec})


@pytest.mark.parametrize(
    ("optimizer", "most", "timeout"),
    [
        (None, 8, "30s"),
        ({"maxToolsToReturn": 3}, 3, "30s"),
        ({"maxToolsToReturn": 3, "embeddingServiceTimeout": "5s"}, 3, "5s"),
    ],
)
def test_the_gateway_optimizer_gets_the_url_and_the_tei_api_keeping_its_settings(
    optimizer: dict[str, Any] | None, most: int, timeout: str
) -> None:
    url = "http://emb.team.svc.cluster.local:8080"
    built = build_optimizer(gateway(optimizer), url)
    assert built is not None, "an EmbeddingServer turns the optimizer on, as in ToolHive"
    assert built.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "maxToolsToReturn": most,
        "embeddingService": url,
        "embeddingProvider": "tei",
        "embeddingServiceTimeout": timeout,
    }


def test_without_an_embedding_server_the_optimizer_is_what_the_spec_says() -> None:
    assert build_optimizer(gateway(None)) is None
