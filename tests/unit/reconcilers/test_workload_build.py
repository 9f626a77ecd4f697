"""The builders every workload kind shares: a podTemplateSpec can tune the front pod but never pin what the
operator owns (the config-hash annotation, the container's image and arguments, the selector labels)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.virtualmcpserver import VirtualMCPServer
from controller.reconcilers import mcpremoteproxy_build, mcpserver_build, virtualmcpserver_build
from controller.reconcilers.children import JSON
from controller.reconcilers.workload_build import FrontPod, Owner, front_container, front_deployment
from tests.support.builders import SETTINGS, owner_ref

OWNER_REF = owner_ref("X", "w", "u")
PINNING_PATCH: JSON = {
    "metadata": {"annotations": {CONFIG_HASH_ANNOTATION: "pinned", "team": "a"}},
    "spec": {"containers": [{"name": "proxy", "image": "evil"}, {"name": "vmcp", "image": "evil"}]},
}


def _server_children(patch: JSON | None, port: int) -> list[JSON]:
    server = MCPServer.model_validate(
        {
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {"image": "img", "transport": "sse", "proxyPort": port, "podTemplateSpec": patch},
        }
    )
    return mcpserver_build.build_children(server, OWNER_REF, SETTINGS, None)


def _proxy_children(patch: JSON | None, port: int) -> list[JSON]:
    proxy = MCPRemoteProxy.model_validate(
        {
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp", "proxyPort": port, "podTemplateSpec": patch},
        }
    )
    rendered = mcpremoteproxy_build.render_config(proxy, SETTINGS, None, None)
    return mcpremoteproxy_build.build_children(proxy, OWNER_REF, SETTINGS, rendered)


def _gateway_children(patch: JSON | None, port: int) -> list[JSON]:
    spec: JSON = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}, "podTemplateSpec": patch}
    if port != 8080:  # what the gateway reads at start-up changes its hash: here, inbound auth
        spec["incomingAuth"] = {
            "type": "oidc",
            "oidcConfig": {"inline": {"issuer": "https://idp.example.com"}},
        }
    vmcp = VirtualMCPServer.model_validate({"metadata": {"name": "w", "namespace": "ns"}, "spec": spec})
    config = virtualmcpserver_build.build_vmcp_config(vmcp, [], SETTINGS)
    return virtualmcpserver_build.build_children(vmcp, OWNER_REF, SETTINGS, config)


KINDS: dict[str, Callable[[JSON | None, int], list[JSON]]] = {
    "MCPServer": _server_children,
    "MCPRemoteProxy": _proxy_children,
    "VirtualMCPServer": _gateway_children,
}


def _front(children: list[JSON]) -> JSON:
    return next(c for c in children if c["kind"] == "Deployment")


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_kind_pod_template_can_pin_the_config_hash(kind: str) -> None:
    build = KINDS[kind]
    plain = _front(build(None, 8080))["spec"]["template"]
    patched = _front(build(PINNING_PATCH, 8080))["spec"]["template"]
    owned = plain["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert patched["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == owned != "pinned"
    changed = _front(build(PINNING_PATCH, 9090))["spec"]["template"]["metadata"]["annotations"]
    assert changed[CONFIG_HASH_ANNOTATION] not in (owned, "pinned")  # a config change still rolls the pods
    assert patched["spec"]["containers"][0]["image"] == SETTINGS.proxy_image  # nor the front image


def test_front_deployment_keeps_user_annotations_and_reimposes_owned_fields() -> None:
    owner = Owner("MCPRemoteProxy", "w", "ns", OWNER_REF)
    container = front_container("proxy", SETTINGS, ["proxy"], 8080, env=[], resources=None)
    patch: JSON = {
        "metadata": {"labels": {"app.kubernetes.io/instance": "other"}, "annotations": {"team": "a"}},
        "spec": {"containers": [{"name": "proxy", "args": ["--evil"], "env": [{"name": "A", "value": "1"}]}]},
    }
    pod = FrontPod(container, account="sa", automount_token=False, config_map="cm", digest="d1", patch=patch)
    template: dict[str, Any] = front_deployment(owner, "w", pod)["spec"]["template"]
    assert template["metadata"]["annotations"] == {"team": "a", CONFIG_HASH_ANNOTATION: "d1"}
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == "w"
    proxy = template["spec"]["containers"][0]
    assert proxy["args"] == ["proxy"] and proxy["env"] == [{"name": "A", "value": "1"}]
