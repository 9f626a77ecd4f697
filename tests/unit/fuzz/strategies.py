"""Hypothesis strategies for objects that are valid by the CRD schema (what the API server would store).

Bias: long names (up to the 253 characters of a DNS-1123 subdomain, with dots), unicode everywhere a free
string is allowed, huge env and arg lists, and every optional field sometimes set.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON = dict[str, Any]

_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


@st.composite
def dns_label(draw: st.DrawFn, max_size: int = 63) -> str:
    """A DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric."""
    size = draw(st.integers(1, max_size))
    if size == 1:
        return draw(st.sampled_from(_LABEL_CHARS))
    inner = draw(st.text(_LABEL_CHARS + "-", min_size=size - 2, max_size=size - 2))
    return draw(st.sampled_from(_LABEL_CHARS)) + inner + draw(st.sampled_from(_LABEL_CHARS))


@st.composite
def resource_name(draw: st.DrawFn) -> str:
    """A DNS-1123 subdomain of 1..253 characters, often long, sometimes with dots."""
    labels = draw(st.lists(dns_label(), min_size=1, max_size=5))
    name = ".".join(labels)
    while len(name) > 253:
        labels.pop()
        name = ".".join(labels)
    return name


free_text = st.text(max_size=40) | st.text(st.characters(codec="utf-8"), min_size=100, max_size=400)
env_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,40}\Z")
secret_key = st.from_regex(r"\A[-._a-zA-Z0-9]{1,60}\Z")
# Kubernetes quantities: plain, suffixed, and the exponent forms (including absurd exponents).
quantity = st.from_regex(r"\A[+-]?[0-9]{1,6}(\.[0-9]{1,3})?(m|k|M|G|Ki|Mi|Gi|e[0-9]{1,12}|E-?[0-9]{1,3})?\Z")
port = st.integers(1, 65535)
duration = st.from_regex(r"\A([0-9]{1,14}(\.[0-9]{1,3})?(ms|s|m|h)){1,3}\Z")
# A small pool first: clashes between header names (case-insensitive) are the interesting case.
header_name = st.sampled_from(["X-Team", "x-team", "X-Api-Version"]) | st.from_regex(
    r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}\Z"
)
https_url = st.builds(
    lambda host, path: f"https://{host}{path}",
    resource_name(),
    st.sampled_from(["", "/mcp", "/sse", "/a/b?x=1", "/%E2%98%83"]),
)
any_url = https_url | st.sampled_from(
    [
        "http://10.0.0.1/mcp",
        "http://169.254.169.254/latest",
        "http://[::ffff:127.0.0.1]/mcp",
        "http://kubernetes.default.svc/api",
        "https://user:pw@example.com/mcp",
        "http://0x7f000001/mcp",
        "https://mcp.example.com:99999/mcp",
        "http://metadata.google.internal/",
        "https://svc.team.svc.cluster.local/mcp",
    ]
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def env_list(max_size: int = 300) -> st.SearchStrategy[list[JSON]]:
    return st.lists(
        st.fixed_dictionaries({"name": env_name}, optional={"value": free_text}),
        max_size=max_size,
        unique_by=lambda e: e["name"],
    )


resources = st.fixed_dictionaries(
    {},
    optional={
        "limits": st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantity),
        "requests": st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantity),
    },
)
secret_ref = st.fixed_dictionaries({"name": resource_name(), "key": secret_key})
local_ref = st.fixed_dictionaries({"name": resource_name()})
oidc_config = st.fixed_dictionaries(
    {"type": st.just("inline")},
    optional={
        "inline": st.fixed_dictionaries(
            {"issuer": any_url},
            optional={
                "audience": st.text(min_size=1, max_size=80),
                "jwksUrl": any_url,
                "clientId": free_text,
                "clientSecretRef": secret_ref,
                "scopes": st.lists(free_text, max_size=10),
                "jwksAllowPrivateIP": st.booleans(),
                "protectedResourceAllowPrivateIP": st.booleans(),
                "caBundleRef": st.fixed_dictionaries(
                    {
                        "configMapRef": st.fixed_dictionaries(
                            {"name": resource_name()}, optional={"key": secret_key}
                        )
                    }
                ),
                "jwksAuthTokenPath": free_text,
                "insecureAllowHTTP": st.booleans(),
            },
        ),
        "resourceUrl": any_url,
    },
)
labels_map = st.dictionaries(
    st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,20}/)?[A-Za-z0-9]{1,20}\Z"), st.text(max_size=63), max_size=10
)
resource_overrides = st.fixed_dictionaries(
    {},
    optional={
        "proxyDeployment": st.fixed_dictionaries(
            {},
            optional={
                "labels": labels_map,
                "annotations": st.dictionaries(st.text(min_size=1, max_size=30), free_text, max_size=5),
                "podTemplateMetadataOverrides": st.fixed_dictionaries(
                    {}, optional={"labels": labels_map, "annotations": labels_map}
                ),
                "env": env_list(50),
                "imagePullSecrets": st.lists(local_ref, max_size=3),
            },
        ),
        "proxyService": st.fixed_dictionaries({}, optional={"labels": labels_map, "annotations": labels_map}),
    },
)
pod_template = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries({}, optional={"labels": labels_map, "annotations": labels_map}),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "nodeSelector": labels_map,
                "containers": st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["mcp", "proxy", "sidecar", "log"])},
                        optional={
                            "image": st.text(min_size=1, max_size=30),
                            "env": env_list(20),
                            "ports": st.lists(st.fixed_dictionaries({"containerPort": port}), max_size=3),
                            "args": st.lists(free_text, max_size=5),
                        },
                    ),
                    max_size=3,
                    unique_by=lambda c: c["name"],
                ),
                "volumes": st.lists(
                    st.fixed_dictionaries({"name": dns_label(20), "emptyDir": st.just({})}), max_size=3
                ),
                "serviceAccountName": dns_label(),
                "hostNetwork": st.booleans(),
            },
        ),
    },
)


def metadata(kind_name: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[JSON]:
    return st.fixed_dictionaries(
        {
            "name": kind_name if kind_name is not None else resource_name(),
            "namespace": dns_label(),
            "uid": st.uuids().map(str),
            "generation": st.integers(1, 2**40),
        },
        optional={"labels": labels_map, "annotations": labels_map},
    )


mcpserver_spec = st.fixed_dictionaries(
    {"image": st.text(min_size=1, max_size=300)},
    optional={
        "transport": st.sampled_from(["stdio", "sse", "streamable-http"]),
        "proxyMode": st.sampled_from(["sse", "streamable-http"]),
        "proxyPort": port,
        "mcpPort": port,
        "args": st.lists(free_text, max_size=300),
        "env": env_list(),
        "secrets": st.lists(
            st.fixed_dictionaries(
                {"name": resource_name(), "key": secret_key}, optional={"targetEnvName": env_name}
            ),
            max_size=40,
        ),
        "resources": resources,
        "proxyResources": resources,
        "podTemplateSpec": pod_template,
        "replicas": st.integers(0, 2**31 - 1),
        "backendReplicas": st.integers(0, 2**31 - 1),
        "serviceAccount": st.text(min_size=1, max_size=80),
        "toolConfigRef": local_ref,
        "groupRef": local_ref,
        "oidcConfig": oidc_config,
        "audit": st.fixed_dictionaries({"enabled": st.booleans()}),
        "externalAuthConfigRef": local_ref,
        "resourceOverrides": resource_overrides,
    },
)

metadata_overrides = st.fixed_dictionaries({}, optional={"labels": labels_map, "annotations": labels_map})
embedding_server_spec = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(min_size=1, max_size=300),
        "hfTokenSecretRef": secret_ref,
        "image": st.text(min_size=1, max_size=300),
        "imagePullPolicy": st.sampled_from(["Always", "Never", "IfNotPresent"]),
        "port": port,
        "args": st.lists(free_text | st.sampled_from(["--port", "--model-id=x"]), max_size=50),
        "env": env_list(50),
        "resources": resources,
        "modelCache": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "storageClassName": st.text(min_size=1, max_size=80),
                "size": quantity,
                "accessMode": st.sampled_from(["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]),
            },
        ),
        "podTemplateSpec": pod_template,
        "resourceOverrides": st.fixed_dictionaries(
            {},
            optional={
                "statefulSet": st.fixed_dictionaries(
                    {},
                    optional={
                        "labels": labels_map,
                        "annotations": labels_map,
                        "podTemplateMetadataOverrides": metadata_overrides,
                    },
                ),
                "service": metadata_overrides,
                "persistentVolumeClaim": metadata_overrides,
            },
        ),
        "replicas": st.integers(1, 2**31 - 1),
    },
)

remote_proxy_spec = st.fixed_dictionaries(
    {"remoteUrl": any_url},
    optional={
        "transport": st.sampled_from(["sse", "streamable-http"]),
        "proxyPort": port,
        "allowPrivateEndpoint": st.booleans(),
        "headerForward": st.fixed_dictionaries(
            {},
            optional={
                "addPlaintextHeaders": st.dictionaries(header_name, free_text, max_size=20),
                "addHeadersFromSecret": st.lists(
                    st.fixed_dictionaries({"headerName": header_name, "valueSecretRef": secret_ref}),
                    max_size=20,
                ),
            },
        ),
        "externalAuthConfigRef": local_ref,
        "oidcConfig": oidc_config,
        "audit": st.fixed_dictionaries({"enabled": st.booleans()}),
        "toolConfigRef": local_ref,
        "groupRef": local_ref,
        "resources": resources,
        "replicas": st.integers(0, 2**31 - 1),
        "serviceAccount": st.text(min_size=1, max_size=80),
        "podTemplateSpec": pod_template,
        "resourceOverrides": resource_overrides,
    },
)

tool_name = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,40}\Z")
tool_override = st.fixed_dictionaries(
    {},
    optional={
        "name": tool_name,
        "description": free_text,
        "annotations": st.fixed_dictionaries(
            {}, optional={"title": free_text, "readOnlyHint": st.booleans()}
        ),
    },
)
backend_auth = st.fixed_dictionaries(
    {"type": st.sampled_from(["discovered", "externalAuthConfigRef", "unauthenticated"])},
    optional={"externalAuthConfigRef": local_ref},
)
vmcp_spec = st.fixed_dictionaries(
    {
        "groupRef": local_ref,
        "incomingAuth": st.fixed_dictionaries(
            {"type": st.sampled_from(["anonymous", "oidc"])}, optional={"oidcConfig": oidc_config}
        ),
    },
    optional={
        "outgoingAuth": st.fixed_dictionaries(
            {},
            optional={
                "source": st.sampled_from(["discovered", "inline"]),
                "default": backend_auth,
                "backends": st.dictionaries(dns_label(), backend_auth, max_size=10),
            },
        ),
        "config": st.fixed_dictionaries(
            {},
            optional={
                "aggregation": st.fixed_dictionaries(
                    {},
                    optional={
                        "conflictResolution": st.sampled_from(["prefix", "priority", "manual"]),
                        "conflictResolutionConfig": st.fixed_dictionaries(
                            {},
                            optional={
                                "prefixFormat": st.text(min_size=1, max_size=20) | st.just("{workload}_"),
                                "priorityOrder": st.lists(dns_label(), max_size=10),
                            },
                        ),
                        "tools": st.lists(
                            st.fixed_dictionaries(
                                {"workload": dns_label()},
                                optional={
                                    "toolConfigRef": local_ref,
                                    "filter": st.lists(tool_name, max_size=20),
                                    "overrides": st.dictionaries(tool_name, tool_override, max_size=10),
                                    "excludeAll": st.booleans(),
                                },
                            ),
                            max_size=10,
                        ),
                        "excludeAllTools": st.booleans(),
                        "defaultToolVisibility": st.sampled_from(["allow", "deny"]),
                    },
                ),
                "operational": st.fixed_dictionaries(
                    {},
                    optional={
                        "timeouts": st.fixed_dictionaries(
                            {},
                            optional={
                                "default": duration,
                                "perWorkload": st.dictionaries(dns_label(), duration, max_size=5),
                            },
                        )
                    },
                ),
            },
        ),
        "serviceType": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
        "replicas": st.integers(0, 2**31 - 1),
        "serviceAccount": st.text(min_size=1, max_size=80),
        "resources": resources,
        "podTemplateSpec": pod_template,
    },
)


def resource(kind: str, spec: st.SearchStrategy[JSON]) -> st.SearchStrategy[JSON]:
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("mcp-operator.dev/v1alpha1"),
            "kind": st.just(kind),
            "metadata": metadata(),
            "spec": spec,
        }
    )
