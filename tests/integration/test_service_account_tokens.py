"""The cluster's own service account tokens (MCPOIDCConfig ``type: kubernetesServiceAccount``) validated
against the real kube-apiserver's JWKS: the inbound settings the operator renders, with the files the
kubelet would mount (the cluster CA, a service account token) placed where this test can read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from api.auth_config import OIDCConfig as RuntimeOIDCConfig
from api.common import OIDCConfig
from controller.reconcilers.render import inbound_oidc
from gateway.auth.tokens import AuthUnavailableError, InvalidTokenError, TokenValidator
from tests.support.cluster import Cluster

ISSUER = "https://kubernetes.default.svc.cluster.local"  # the test control plane's --service-account-issuer


async def _token(core: client.CoreV1Api, namespace: str, account: str, audience: str) -> str:
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    request = {"spec": {"audiences": [audience], "expirationSeconds": 600}}
    answer = await core.create_namespaced_service_account_token(account, namespace, request)
    return str(answer.status.token)


async def test_the_clusters_service_account_tokens_are_validated_with_its_jwks(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = json.loads(cluster.kubeconfig.read_text())
    server = kubeconfig["clusters"][0]["cluster"]
    core = client.CoreV1Api(api_client)
    accepted = await _token(core, namespace, "client", "fetch")
    other_account = await _token(core, namespace, "other", "fetch")
    other_audience = await _token(core, namespace, "elsewhere", "another-server")

    block = {"issuer": ISSUER, "jwksUrl": f"{server['server']}/openid/v1/jwks", "serviceAccount": "client"}
    oidc = OIDCConfig.model_validate(
        {"type": "kubernetesServiceAccount", "kubernetesServiceAccount": {**block, "audience": "fetch"}}
    )
    rendered = inbound_oidc(oidc, "unused", "https://fetch.example.com/mcp", namespace)
    assert rendered is not None and rendered.subject == f"system:serviceaccount:{namespace}:client"
    # What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount/: the CA, a token allowed
    # to read the issuer's keys (here the admin's; in a cluster, the proxy's own with the discovery role).
    ca_pem = Path(server["certificate-authority"]).read_text()  # noqa: ASYNC240 - a small local file
    (tmp_path / "ca.crt").write_text(ca_pem)
    (tmp_path / "token").write_text(kubeconfig["users"][0]["user"]["token"])
    mounted = rendered.model_copy(
        update={"ca_bundle_path": str(tmp_path / "ca.crt"), "jwks_auth_token_path": str(tmp_path / "token")}
    )
    validator = TokenValidator(mounted)
    try:
        token = await validator.validate(accepted)
        assert token.claims["sub"] == f"system:serviceaccount:{namespace}:client"
        assert token.claims["iss"] == ISSUER and token.claims["aud"] == ["fetch"]
        with pytest.raises(InvalidTokenError, match="subject is not allowed"):
            await validator.validate(other_account)
        with pytest.raises(InvalidTokenError, match="audience"):
            await validator.validate(other_audience)
    finally:
        await validator.aclose()

    # Without a token allowed to read them, the keys cannot be fetched: every call is refused (503).
    anonymous = TokenValidator(mounted.model_copy(update={"jwks_auth_token_path": None}))
    try:
        with pytest.raises(AuthUnavailableError):
            await anonymous.validate(accepted)
    finally:
        await anonymous.aclose()


async def test_an_inline_provider_sends_the_token_of_its_jwks_auth_token_path(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = json.loads(cluster.kubeconfig.read_text())
    server = kubeconfig["clusters"][0]["cluster"]
    accepted = await _token(client.CoreV1Api(api_client), namespace, "client", "fetch")
    token_file = tmp_path / "token"
    inline = {"issuer": ISSUER, "jwksUrl": f"{server['server']}/openid/v1/jwks", "audience": "fetch"}
    oidc = OIDCConfig.model_validate(
        {"type": "inline", "inline": {**inline, "jwksAuthTokenPath": str(token_file)}}
    )
    rendered = inline_oidc_with_cluster_ca(oidc, namespace, Path(server["certificate-authority"]))
    assert rendered.jwks_auth_token_path == str(token_file)

    # The file does not exist yet: the keys cannot be fetched, every call is refused (503).
    validator = TokenValidator(rendered)
    try:
        with pytest.raises(AuthUnavailableError):
            await validator.validate(accepted)
    finally:
        await validator.aclose()
    token_file.write_text(kubeconfig["users"][0]["user"]["token"])  # read at the fetch, not at start
    validator = TokenValidator(rendered)
    try:
        token = await validator.validate(accepted)
        assert token.claims["sub"] == f"system:serviceaccount:{namespace}:client"
    finally:
        await validator.aclose()


def inline_oidc_with_cluster_ca(oidc: OIDCConfig, namespace: str, ca: Path) -> RuntimeOIDCConfig:
    """The rendered inline settings, trusting the test control plane's CA (its own, not a public one)."""
    rendered = inbound_oidc(oidc, "unused", "https://fetch.example.com/mcp", namespace)
    assert rendered is not None
    return rendered.model_copy(update={"ca_bundle_path": str(ca)})
