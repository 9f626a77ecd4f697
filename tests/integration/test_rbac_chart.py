"""What the installed chart lets the operator's ServiceAccount do, as the API server reports it.

`kubectl auth can-i --list --as=system:serviceaccount:NS:SA` is compared with the reviewed allow-list
below, in both RBAC scopes and in every kind of namespace (release, watched, unwatched). Permissions
every account has (discovery, self reviews) are measured with an account that has no bindings and
subtracted, so the comparison covers exactly what the chart grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api.registry import KINDS
from tests.fixtures.chart.charts import (
    OPERATOR_CHART,
    create_namespace,
    delete_namespaces,
    helm_config,
    unique,
)
from tests.support.cluster import Cluster

MCP_KINDS = [info.plural for info in KINDS.values()]  # the chart's rules on them are generated from the CRDs

# The reviewed allow-list: resource -> verbs. Change it only together with docs/install.md.
MANAGER_GRANTS: dict[str, set[str]] = {
    **{f"{kind}.mcp-operator.dev": {"get", "list", "watch", "patch", "update"} for kind in MCP_KINDS},
    **{f"{kind}.mcp-operator.dev/status": {"get", "patch", "update"} for kind in MCP_KINDS},
    **{f"{kind}.mcp-operator.dev/finalizers": {"update"} for kind in MCP_KINDS},
    "deployments.apps": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "statefulsets.apps": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "services": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "configmaps": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "serviceaccounts": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "secrets": {"get", "list", "watch"},
    "pods": {"get", "list", "watch"},
    "pods/attach": {"create", "get"},
    "events": {"create", "patch"},
    "events.events.k8s.io": {"create", "patch"},
    "roles.rbac.authorization.k8s.io": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "rolebindings.rbac.authorization.k8s.io": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "networkpolicies.networking.k8s.io": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "poddisruptionbudgets.policy": {"get", "list", "watch", "create", "patch", "delete"},
}
LEADER_ELECTION_GRANTS: dict[str, set[str]] = {
    "leases.coordination.k8s.io": {"get", "list", "watch", "create", "update", "patch"},
    "events": {"create", "patch"},
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}

Rules = dict[str, set[str]]


def merge(*grants: Rules) -> Rules:
    merged: Rules = {}
    for grant in grants:
        for resource, verbs in grant.items():
            merged.setdefault(resource, set()).update(verbs)
    return merged


def parse_can_i_list(output: str) -> Rules:
    """Rows of `kubectl auth can-i --list` as {resource or URL (+ names): verbs}, by column position."""
    header, *rows = output.splitlines()
    columns = [header.index(title) for title in ("Non-Resource URLs", "Resource Names", "Verbs")]
    rules: Rules = {}
    for row in rows:
        if not row.strip():
            continue
        resource = row[: columns[0]].strip()
        urls = row[columns[0] : columns[1]].strip().strip("[]")
        names = row[columns[1] : columns[2]].strip().strip("[]")
        verbs = set(row[columns[2] :].strip().strip("[]").split())
        key = resource or urls
        if names:
            key = f"{key}[{names}]"
        rules.setdefault(key, set()).update(verbs)
    return rules


def can_i_list(cluster: Cluster, account: str, namespace: str) -> Rules:
    result = cluster.kubectl("auth", "can-i", "--list", f"--as={account}", "-n", namespace)
    return parse_can_i_list(result.stdout)


def granted(cluster: Cluster, account: str, namespace: str, baseline_account: str) -> Rules:
    """What ``account`` may do in ``namespace`` beyond an account without any binding."""
    everything = can_i_list(cluster, account, namespace)
    assert_nothing_dangerous(everything)
    baseline = can_i_list(cluster, baseline_account, namespace)
    extra: Rules = {}
    for resource, verbs in everything.items():
        remaining = verbs - baseline.get(resource, set())
        if remaining:
            extra[resource] = remaining
    return extra


def assert_nothing_dangerous(rules: Rules) -> None:
    for resource, verbs in rules.items():
        assert "*" not in verbs, f"wildcard verb on {resource}"
        assert not resource.startswith("*"), f"wildcard resource {resource}"
        assert not resource.startswith("pods/exec"), "pods/exec must never be granted"
        if resource.startswith("secrets"):
            assert not verbs & WRITE_VERBS, f"secrets must be read-only, got {sorted(verbs)}"


@dataclass
class Installed:
    namespace: str
    account: str
    baseline_account: str
    watched: list[str]
    other: str


@pytest.fixture(params=["cluster", "namespace"])
def installed(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Installed]:
    """The operator chart installed with the given RBAC scope (no CRDs needed for RBAC)."""
    scope = str(request.param)
    namespace = create_namespace(cluster, "rbac")
    watched = [create_namespace(cluster, "watched") for _ in range(2)] if scope == "namespace" else []
    other = create_namespace(cluster, "other")
    release = unique("rbac")
    values = {"rbac": {"scope": scope, "watchNamespaces": watched}}
    try:
        with helm_config(cluster, namespace) as cfg:
            cfg.install(OPERATOR_CHART, release, values, namespace=namespace, timeout=120)
            try:
                yield Installed(
                    namespace=namespace,
                    account=f"system:serviceaccount:{namespace}:{release}-mcp-operator",
                    baseline_account=f"system:serviceaccount:{namespace}:no-bindings",
                    watched=watched,
                    other=other,
                )
            finally:
                cfg.uninstall(release)
    finally:
        delete_namespaces(cluster, namespace, other, *watched)


def test_operator_account_holds_exactly_the_reviewed_permissions(
    cluster: Cluster, installed: Installed
) -> None:
    def grants_in(namespace: str) -> Rules:
        return granted(cluster, installed.account, namespace, installed.baseline_account)

    if not installed.watched:  # cluster scope: everywhere the manager rules, leases only at home
        assert grants_in(installed.namespace) == merge(MANAGER_GRANTS, LEADER_ELECTION_GRANTS)
        assert grants_in(installed.other) == MANAGER_GRANTS
    else:  # namespace scope: manager rules only where watched, nothing elsewhere
        for namespace in installed.watched:
            assert grants_in(namespace) == MANAGER_GRANTS
        assert grants_in(installed.namespace) == LEADER_ELECTION_GRANTS
        assert grants_in(installed.other) == {}


def test_operator_account_cannot_write_secrets_or_exec_into_pods(
    cluster: Cluster, installed: Installed
) -> None:
    namespace = installed.watched[0] if installed.watched else installed.other
    for verb, resource in [
        ("create", "secrets"),
        ("update", "secrets"),
        ("delete", "secrets"),
        ("create", "pods/exec"),
        ("create", "pods"),
        ("create", "clusterroles"),
        ("escalate", "roles"),
        ("bind", "roles"),
    ]:
        answer = cluster.kubectl(
            "auth", "can-i", verb, resource, f"--as={installed.account}", "-n", namespace, check=False
        )
        assert answer.stdout.strip() == "no", f"{verb} {resource}: {answer.stdout}"
    allowed = cluster.kubectl(
        "auth", "can-i", "get", "secrets", f"--as={installed.account}", "-n", namespace, check=False
    )
    assert allowed.stdout.strip() == "yes"
