"""The gateway over a real MCP server registered only through an MCPServerEntry.

The gateway's config is rendered from MCPServerEntry objects by the operator's own builders (what the
VirtualMCPServer reconciler writes into its ConfigMap): no MCPServer or proxy runs for the backend, the
gateway (``mcp-operator vmcp``) dials the entry's remote URL itself, with the entry's outbound credential
and headers. A spy in front of each "remote" (the fixture server on 127.0.0.1) records what reaches it.

The operator refuses a loopback ``remoteUrl`` outright (tests/unit/api); here the SSRF guard at connect
time is what is tested: the entry with ``allowPrivateEndpoint`` reaches 127.0.0.1, the one without is
refused before any request leaves the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpserverentry import MCPServerEntry
from api.virtualmcpserver import VirtualMCPServer
from controller.reconcilers.render import SecretEnv, header_forward, outbound_auth
from controller.reconcilers.virtualmcpserver_build import Backend, build_vmcp_config, member_from_raw
from tests.support import gateway_processes as gp
from tests.support.asgi import serve_asgi
from tests.support.auth import bind
from tests.support.builders import SETTINGS
from tests.support.remote_proxy import Spy, remote_server
from tests.support.resources import bearer_token
from tests.support.tls import private_ca_server

pytestmark = pytest.mark.slow

TOKEN = "entry-credential"


def entry(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": "MCPServerEntry",
        "metadata": {"name": name, "namespace": "tools"},
        "spec": {"remoteUrl": url, "transport": "streamable-http", "groupRef": {"name": "remote"}, **spec},
    }


def gateway_config(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The gateway's config for a group of these entries, and its Secret-filled environment."""
    vmcp = VirtualMCPServer.model_validate(
        {
            "metadata": {"name": "gw", "namespace": "tools"},
            "spec": {
                "groupRef": {"name": "remote"},
                "incomingAuth": {"type": "anonymous"},
                "config": {
                    "operational": {
                        "failureHandling": {
                            "healthCheckInterval": "500ms",
                            "partialFailureMode": "best_effort",
                        }
                    }
                },
            },
        }
    )
    auth = MCPExternalAuthConfig.model_validate(bearer_token("remote-bearer", "remote-token", "token"))
    secrets = SecretEnv()
    backends = []
    for raw in entries:
        member = member_from_raw("MCPServerEntry", raw)
        forward = header_forward(MCPServerEntry.model_validate(raw).spec.header_forward, secrets)
        credential = outbound_auth(auth.spec, secrets) if member.external_auth else None
        backends.append(Backend(member, credential, forward))
    env = {item["name"]: TOKEN for item in secrets.env()}  # the kubelet fills these from the Secret
    return build_vmcp_config(vmcp, backends, SETTINGS).to_file_dict(), env


def backend_health(base: str) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in gp.get_json(f"{base}/status")["backends"]}


@contextlib.asynccontextmanager
async def gateway_running(
    tmp_path: Path, config: dict[str, Any], env: dict[str, str], *, ready: str, refused: str
) -> AsyncIterator[tuple[str, dict[str, dict[str, Any]]]]:
    """The gateway on ``config``, once backend ``ready`` serves and ``refused`` has failed: its base URL
    and the backends' health then."""
    path, port = tmp_path / "vmcp.yaml", gp.free_port()
    gp.write_config(path, config)
    argv = [str(gp.BIN / "mcp-operator"), "vmcp", "--port", str(port), "--config", str(path)]
    proc = gp.start("gateway", argv, tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(gp.wait_http, f"{base}/health", proc)
        health = await asyncio.to_thread(
            gp.wait_until,
            lambda: (
                (h := backend_health(base))[ready]["health"] == "ready" and h[refused].get("lastError") and h
            ),
            what=f"{ready} ready and {refused} refused",
        )
        yield base, health
    finally:
        await asyncio.to_thread(proc.stop)


async def test_an_entry_is_routed_directly_with_its_credentials_and_a_refused_one_never_contacted(
    tmp_path: Path,
) -> None:
    with remote_server("fixture") as (upstream, (tool, args, expected)):
        reached, refused = Spy(upstream), Spy(upstream)
        (reached_sock, reached_url), (refused_sock, refused_url) = bind(), bind()
        async with serve_asgi((reached_sock, reached.app()), (refused_sock, refused.app())):
            config, env = gateway_config(
                [
                    entry(
                        "docs",
                        f"{reached_url}/mcp",
                        allowPrivateEndpoint=True,  # the "remote" is on 127.0.0.1 in this test
                        externalAuthConfigRef={"name": "remote-bearer"},
                        headerForward={"addPlaintextHeaders": {"X-Client": "mcp-operator"}},
                    ),
                    entry("private", f"{refused_url}/mcp"),
                ]
            )
            running = gateway_running(tmp_path, config, env, ready="docs", refused="private")
            async with running as (base, health), Client(f"{base}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert f"docs_{tool}" in names and not any(n.startswith("private_") for n in names), names
                result = await client.call_tool(f"docs_{tool}", args)
                assert expected in "".join(getattr(c, "text", "") for c in result.content), result
    assert health["private"]["health"] != "ready", health
    assert "private endpoints are not allowed" in health["private"]["lastError"], health
    assert refused.seen == [], "the SSRF guard let a request through"
    assert reached.seen and any(tool in r["body"] for r in reached.seen)
    for request in reached.seen:
        assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["x-client"] == "mcp-operator"


async def test_an_entry_with_a_ca_bundle_is_verified_with_that_ca_only(tmp_path: Path) -> None:
    tls = private_ca_server()
    (tmp_path / "server.crt").write_text(tls.cert_pem)
    (tmp_path / "server.key").write_text(tls.key_pem)
    with remote_server("fixture") as (upstream, (tool, args, expected)):
        spy = Spy(upstream)
        sock, url = bind()
        https = url.replace("http://", "https://")
        async with serve_asgi(
            (sock, spy.app()), tls=(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))
        ):
            vmcp = VirtualMCPServer.model_validate(
                {
                    "metadata": {"name": "gw", "namespace": "tools"},
                    "spec": {"groupRef": {"name": "remote"}, "incomingAuth": {"type": "anonymous"}},
                }
            )
            trusted = member_from_raw(
                "MCPServerEntry", entry("private-ca", f"{https}/mcp", allowPrivateEndpoint=True)
            )
            system = member_from_raw(
                "MCPServerEntry", entry("system-cas", f"{https}/mcp", allowPrivateEndpoint=True)
            )
            config = build_vmcp_config(
                vmcp, [Backend(trusted, ca_bundle=tls.ca_pem), Backend(system)], SETTINGS
            ).to_file_dict()
            running = gateway_running(tmp_path, config, {}, ready="private-ca", refused="system-cas")
            async with running as (base, health), Client(f"{base}/mcp") as client:
                result = await client.call_tool(f"private-ca_{tool}", args)
                assert expected in "".join(getattr(c, "text", "") for c in result.content), result
    assert health["system-cas"]["health"] != "ready", health
    assert "CERTIFICATE_VERIFY_FAILED" in health["system-cas"]["lastError"], health
    assert spy.seen and all(r["path"] == "/mcp" for r in spy.seen)
