"""MCPTelemetryConfig on the real API server: its validity and hash, and an MCPServer / MCPRemoteProxy that
refers to it gets its OTLP settings as the proxy's environment (headers from Secrets as secretKeyRef,
never in a ConfigMap), its hash in status, and a changed config rolls the proxy; the config lists the
workloads that refer to it and its deletion waits for them."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Api
from tests.support.mcpserver import PLURAL, server
from tests.support.operator import Operator
from tests.support.waiting import eventually

CONFIGS = "mcptelemetryconfigs"


def telemetry_config(name: str, **otel: Any) -> dict[str, Any]:
    base = {"enabled": True, "endpoint": "otel-collector.monitoring:4318", "insecure": True}
    return {
        "kind": "MCPTelemetryConfig",
        "metadata": {"name": name},
        "spec": {"openTelemetry": {**base, **otel}},
    }


async def proxy_env(kube: Api, name: str) -> dict[str, Any]:
    deployment = await kube.child("Deployment", name)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


async def test_a_referenced_config_becomes_the_proxy_env_and_a_change_rolls_it(
    operator: Operator, kube: Api
) -> None:
    await kube.create_secret("otel-auth", {"api-key": "s3cret"})
    sensitive = [{"name": "X-API-Key", "secretKeyRef": {"name": "otel-auth", "key": "api-key"}}]
    await kube.create(
        CONFIGS,
        telemetry_config(
            "otel",
            tracing={"enabled": True, "samplingRate": "0.25"},
            headers={"X-Tenant": "team a"},
            sensitiveHeaders=sensitive,
            resourceAttributes={"deployment.environment": "test"},
        ),
    )
    await kube.wait_condition(CONFIGS, "otel", "Accepted", status="True")
    await kube.create(
        PLURAL, server("traced", telemetryConfigRef={"name": "otel", "serviceName": "fetch-svc"})
    )

    async def env() -> dict[str, Any] | None:
        found = await proxy_env(kube, "traced") if await kube.child("Deployment", "traced") else {}
        return found if "OTEL_EXPORTER_OTLP_ENDPOINT" in found else None

    first = await eventually(env, what="the proxy's OTEL_* environment")
    assert first["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.monitoring:4318"
    assert first["OTEL_SERVICE_NAME"] == "fetch-svc"
    assert first["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert first["OTEL_METRICS_EXPORTER"] == "none", "metrics.enabled is not set"
    assert first["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=test"
    assert first["MCP_OPERATOR_OTLP_HEADER_0"] == {"secretKeyRef": {"name": "otel-auth", "key": "api-key"}}
    assert first["OTEL_EXPORTER_OTLP_HEADERS"] == "X-Tenant=team%20a,X-API-Key=$(MCP_OPERATOR_OTLP_HEADER_0)"
    config_map = await kube.child("ConfigMap", "traced-proxy")
    assert config_map is not None and "s3cret" not in str(config_map) and "otel-auth" not in str(config_map)

    async def hash_reported() -> str | None:
        config_hash = (await kube.get(CONFIGS, "otel")).get("status", {}).get("configHash")
        status = (await kube.get(PLURAL, "traced")).get("status", {})
        return config_hash if config_hash and status.get("telemetryConfigHash") == config_hash else None

    old_hash = await eventually(hash_reported, what="status.telemetryConfigHash equal to the config's hash")

    await kube.patch(CONFIGS, "otel", {"spec": {"openTelemetry": {"tracing": {"samplingRate": "1"}}}})

    async def rolled() -> bool:
        return (await proxy_env(kube, "traced")).get("OTEL_TRACES_SAMPLER_ARG") == "1"

    await eventually(rolled, what="the proxy's pod template with the new sampling rate")
    new_hash = await eventually(hash_reported, what="the new hash in status")
    assert new_hash != old_hash


async def test_an_invalid_config_is_refused_naming_the_field_and_the_workload_waits(
    operator: Operator, kube: Api
) -> None:
    await kube.create(
        CONFIGS, telemetry_config("bad", tracing={"enabled": False}, metrics={"enabled": False})
    )
    refused = await kube.wait_condition(CONFIGS, "bad", "Accepted", status="False", reason="InvalidSpec")
    assert "spec.openTelemetry.endpoint: is set but no signal is enabled" in refused["message"]
    await kube.create(PLURAL, server("waits", telemetryConfigRef={"name": "bad"}))
    refs = await kube.wait_condition(PLURAL, "waits", "ResolvedRefs", status="False")
    assert refs["reason"] == "TelemetryConfigInvalid"
    assert await kube.child("Deployment", "waits") is None, "nothing deployed with a config that is refused"


async def test_a_missing_header_secret_is_named(operator: Operator, kube: Api) -> None:
    sensitive = [{"name": "Authorization", "secretKeyRef": {"name": "absent", "key": "token"}}]
    await kube.create(
        CONFIGS, telemetry_config("nosecret", tracing={"enabled": True}, sensitiveHeaders=sensitive)
    )
    await kube.create(PLURAL, server("nosecret", telemetryConfigRef={"name": "nosecret"}))
    refs = await kube.wait_condition(
        PLURAL, "nosecret", "ResolvedRefs", status="False", reason="SecretNotFound"
    )
    assert "spec.openTelemetry.sensitiveHeaders[0].secretKeyRef" in refs["message"]
    await kube.create_secret("absent", {"token": "Bearer x"})
    await kube.wait_condition(PLURAL, "nosecret", "ResolvedRefs", status="True")


async def test_a_gateway_gets_the_config_as_its_env_and_reports_its_hash(
    operator: Operator, kube: Api
) -> None:
    await kube.create(
        CONFIGS, telemetry_config("gw-otel", tracing={"enabled": True}, metrics={"enabled": True})
    )
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    gateway = {
        "kind": "VirtualMCPServer",
        "metadata": {"name": "gw"},
        "spec": {
            "groupRef": {"name": "team"},
            "incomingAuth": {"type": "anonymous"},
            "telemetryConfigRef": {"name": "gw-otel"},
        },
    }
    await kube.create("virtualmcpservers", gateway)

    async def env() -> dict[str, Any] | None:
        found = await proxy_env(kube, "gw") if await kube.child("Deployment", "gw") else {}
        return found if "OTEL_EXPORTER_OTLP_ENDPOINT" in found else None

    found = await eventually(env, what="the gateway's OTEL_* environment")
    assert found["OTEL_SERVICE_NAME"] == "gw"
    assert found["OTEL_TRACES_SAMPLER_ARG"] == "0.05", "ToolHive's default sampling rate"
    assert "OTEL_METRICS_EXPORTER" not in found, "metrics.enabled: the OTLP metrics export is on"

    async def hash_reported() -> bool:
        config_hash = (await kube.get(CONFIGS, "gw-otel")).get("status", {}).get("configHash")
        status = (await kube.get("virtualmcpservers", "gw")).get("status", {})
        return bool(config_hash) and status.get("telemetryConfigHash") == config_hash

    await eventually(hash_reported, what="the gateway's status.telemetryConfigHash")


async def test_the_config_lists_the_workloads_that_refer_to_it_and_waits_for_them_to_go(
    operator: Operator, kube: Api
) -> None:
    await kube.create(CONFIGS, telemetry_config("shared", metrics={"enabled": True}))
    await kube.create(PLURAL, server("one", telemetryConfigRef={"name": "shared"}))
    await kube.create(PLURAL, server("two", telemetryConfigRef={"name": "shared", "serviceName": "two-svc"}))

    async def listed(count: int) -> list[dict[str, str]] | None:
        workloads = (await kube.get(CONFIGS, "shared")).get("status", {}).get("referencingWorkloads") or []
        return workloads if len(workloads) == count else None

    workloads = await eventually(lambda: listed(2), what="status.referencingWorkloads with both servers")
    assert sorted(w["name"] for w in workloads) == ["one", "two"]
    assert {w["kind"] for w in workloads} == {"MCPServer"}
    in_use = await kube.wait_condition(CONFIGS, "shared", "InUse", status="True")
    assert "MCPServer/one" in in_use["message"] and "MCPServer/two" in in_use["message"]

    await kube.delete(CONFIGS, "shared")
    blocked = await kube.wait_condition(CONFIGS, "shared", "DeletionBlocked", status="True")
    assert "MCPServer/one" in blocked["message"]
    await kube.delete(PLURAL, "one")
    await kube.delete(PLURAL, "two")

    async def gone() -> bool:
        listed = await kube.custom.list_namespaced_custom_object(
            "mcp-operator.dev", "v1beta1", kube.ns, CONFIGS
        )
        return not any(item["metadata"]["name"] == "shared" for item in listed["items"])

    await eventually(gone, what="the config deleted once no workload refers to it")


async def test_a_gateway_with_toolhive_inline_telemetry_gets_it_as_its_env(
    operator: Operator, kube: Api
) -> None:
    """ToolHive's flat ``spec.config.telemetry``: applied to the gateway, not ignored, not with a ref."""
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "inline"}, "spec": {}})
    telemetry = {
        "endpoint": "otel-collector:4317",
        "insecure": True,
        "tracingEnabled": True,
        "samplingRate": "0.1",
        "serviceName": "my-vmcp",
    }
    gateway = {
        "kind": "VirtualMCPServer",
        "metadata": {"name": "gw-inline"},
        "spec": {
            "groupRef": {"name": "inline"},
            "incomingAuth": {"type": "anonymous"},
            "config": {"telemetry": telemetry},
        },
    }
    await kube.create("virtualmcpservers", gateway)

    async def env() -> dict[str, Any] | None:
        found = await proxy_env(kube, "gw-inline") if await kube.child("Deployment", "gw-inline") else {}
        return found if "OTEL_EXPORTER_OTLP_ENDPOINT" in found else None

    found = await eventually(env, what="the gateway's OTEL_* environment")
    assert found["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert found["OTEL_SERVICE_NAME"] == "my-vmcp"
    assert found["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert found["OTEL_METRICS_EXPORTER"] == "none", "metricsEnabled unset: no OTLP metrics"
    assert found["MCP_OPERATOR_OTEL_LEGACY_ATTRIBUTES"] == "true", "ToolHive's default"

    await kube.create(CONFIGS, telemetry_config("shared", tracing={"enabled": True}))
    await kube.patch("virtualmcpservers", "gw-inline", {"spec": {"telemetryConfigRef": {"name": "shared"}}})
    refused = await kube.wait_condition("virtualmcpservers", "gw-inline", "Accepted", status="False")
    assert "spec.config.telemetry: is set together with spec.telemetryConfigRef" in refused["message"]
    assert (await proxy_env(kube, "gw-inline"))["OTEL_SERVICE_NAME"] == "my-vmcp", "the running gateway stays"
