"""Desired state of a VirtualMCPServer: pure functions from the typed spec and its resolved group.

Children, all owned by the VirtualMCPServer:

- ConfigMap ``<name>-vmcp``: the gateway's config file ``vmcp.yaml`` (``api.vmcp_config``): one backend per
  group member that has a ``status.url``, its outbound auth, the aggregation policy, filters, overrides,
  timeouts and inbound OIDC. Secret values never appear in it: they are environment variables filled by
  the kubelet from ``secretKeyRef``;
- ServiceAccount ``<name>-vmcp`` (not created when ``spec.serviceAccount`` names one), and Role +
  RoleBinding ``<name>-vmcp`` granting that account ``get``/``patch`` on this one VirtualMCPServer's
  ``status`` and nothing else: the gateway writes its backends' health there (``VMCP_NAME`` /
  ``VMCP_NAMESPACE`` in its environment name the object);
- Deployment ``<name>``: ``mcp-operator vmcp``. Its pod template carries the hash of what the gateway reads
  only at start-up (image, port, inbound auth), NOT of the backend list: the gateway hot-reloads the
  mounted ConfigMap, so membership and URL changes never roll the pods;
- Service ``<name>``: the endpoint clients use.

Members come in as :class:`Member` values read from the cache by the reconciler; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.auth_config import OutboundAuthConfig
from api.mcptoolconfig import MCPToolConfig
from api.virtualmcpserver import VirtualMCPServer
from api.virtualmcpserver import WorkloadToolConfig as CRDWorkloadTools
from api.vmcp_config import (
    AggregationConfig,
    BackendConfig,
    ConflictResolutionConfig,
    IncomingAuthConfig,
    OperationalConfig,
    TimeoutsConfig,
    ToolOverride,
    VMCPConfig,
    WorkloadTimeouts,
    WorkloadToolConfig,
)
from controller.reconcilers import children
from controller.reconcilers.children import CONFIG_HASH_ANNOTATION, JSON, labels, object_meta, selector_labels
from controller.reconcilers.podtemplate import (
    RESTRICTED_POD_SECURITY,
    apply_user_patch,
    container_security,
)
from controller.reconcilers.render import inbound_oidc, tool_filter
from controller.reconcilers.settings import ReconcilerSettings

KIND = "VirtualMCPServer"
CONFIG_KEY = "vmcp.yaml"
CONFIG_DIR = "/etc/mcp-operator"
VMCP_PORT = 4483
CONTAINER = "vmcp"
COMPONENT = "gateway"

Transport = Literal["streamable-http", "sse"]


@dataclass(frozen=True)
class Names:
    """Names of a VirtualMCPServer's children."""

    name: str

    @property
    def gateway(self) -> str:
        """Deployment and Service (``children.child_name``: a DNS-1123 label of at most 63)."""
        return children.child_name(self.name)

    @property
    def config(self) -> str:
        return children.child_name(self.name, "-vmcp")

    @property
    def account(self) -> str:
        return self.config


@dataclass(frozen=True)
class Member:
    """One group member as the gateway needs it (read from the member's raw cached object)."""

    kind: str
    """``MCPServer`` or ``MCPRemoteProxy``."""
    name: str
    url: str | None
    """The member's ``status.url``; a member without one is not a backend yet."""
    transport: Transport
    external_auth: str | None
    """The member's own ``spec.externalAuthConfigRef.name`` (used by ``discovered`` outbound auth)."""


@dataclass(frozen=True)
class Backend:
    """A member that becomes a gateway backend, with its resolved outbound auth."""

    member: Member
    auth: OutboundAuthConfig | None = None


def member_from_raw(kind: str, raw: JSON) -> Member:
    """Read a member from its raw dict (an unparseable spec still yields what the gateway needs)."""
    spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    assert isinstance(status, dict)
    url = status.get("url") if isinstance(status.get("url"), str) and status.get("url") else None
    sse = spec.get("transport") == "sse" or (
        spec.get("transport") == "stdio" and spec.get("proxyMode") == "sse"
    )
    if url is not None:  # the URL the member publishes is what the gateway dials: trust its path
        sse = url.rstrip("/").endswith("/sse")
    ref = spec.get("externalAuthConfigRef")
    auth = str(ref["name"]) if isinstance(ref, dict) and ref.get("name") else None
    return Member(
        kind=kind,
        name=str((raw.get("metadata") or {}).get("name")),
        url=url,
        transport="sse" if sse else "streamable-http",
        external_auth=auth,
    )


def auth_config_name(vmcp: VirtualMCPServer, member: Member) -> str | None:
    """Which MCPExternalAuthConfig authenticates the gateway to ``member`` (None: no credential).

    A ``spec.outgoingAuth.backends[<member>]`` entry wins over ``default``; an entry of type
    ``discovered`` uses the member's own ``externalAuthConfigRef``. Without an entry, source
    ``discovered`` (the default) also uses the member's, and ``inline`` sends none.
    """
    outgoing = vmcp.spec.outgoing_auth
    if outgoing is None:
        return member.external_auth
    entry = (outgoing.backends or {}).get(member.name) or outgoing.default
    if entry is None:
        return member.external_auth if outgoing.source == "discovered" else None
    if entry.type == "discovered":
        return member.external_auth
    if entry.type == "externalAuthConfigRef" and entry.external_auth_config_ref is not None:
        return entry.external_auth_config_ref.name
    return None


def service_url(vmcp: VirtualMCPServer, settings: ReconcilerSettings) -> str:
    """``status.url``: the gateway Service's in-cluster URL."""
    host = f"{Names(vmcp.metadata.name).gateway}.{vmcp.metadata.namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{VMCP_PORT}/mcp"


def _workload_tools(
    entry: CRDWorkloadTools | None,
    workload: str,
    tool_configs: Mapping[str, MCPToolConfig | None],
    hide: bool,
) -> WorkloadToolConfig | None:
    """One backend's filter/overrides; a referenced MCPToolConfig that is missing hides every tool."""
    if entry is None:
        return WorkloadToolConfig(workload=workload, exclude_all=True) if hide else None
    if entry.tool_config_ref is not None:
        found = tool_configs.get(entry.tool_config_ref.name)
        if found is None:  # fail closed: never expose tools a filter was meant to hide
            return WorkloadToolConfig(workload=workload, exclude_all=True)
        rendered = tool_filter(found)
        return WorkloadToolConfig(
            workload=workload,
            filter=list(rendered.allow or ()),
            exclude_all=hide or entry.exclude_all,
            overrides={
                k: ToolOverride(name=o.name, description=o.description) for k, o in rendered.overrides.items()
            },
        )
    return WorkloadToolConfig(
        workload=workload,
        filter=list(entry.filter or ()),
        exclude_all=hide or entry.exclude_all,
        overrides={
            k: ToolOverride(name=o.name, description=o.description)
            for k, o in sorted((entry.overrides or {}).items())
        },
    )


def build_aggregation(
    vmcp: VirtualMCPServer, workloads: Sequence[str], tool_configs: Mapping[str, MCPToolConfig | None]
) -> AggregationConfig:
    """The aggregation policy; ``excludeAllTools`` and ``defaultToolVisibility: deny`` become per-backend
    ``excludeAll`` entries (the gateway's config has no global switch)."""
    agg = vmcp.spec.config.aggregation
    entries = {t.workload: t for t in agg.tools or []}
    deny_unlisted = agg.default_tool_visibility == "deny"
    tools: list[WorkloadToolConfig] = []
    for workload in sorted(set(workloads) | set(entries)):
        entry = entries.get(workload)
        hide = agg.exclude_all_tools or (deny_unlisted and entry is None)
        rendered = _workload_tools(entry, workload, tool_configs, hide)
        if rendered is not None:
            tools.append(rendered)
    crc = agg.conflict_resolution_config
    return AggregationConfig(
        conflict_resolution=agg.conflict_resolution,
        conflict_resolution_config=ConflictResolutionConfig(
            prefix_format=crc.prefix_format, priority_order=list(crc.priority_order or ())
        ),
        tools=tools,
    )


def build_operational(vmcp: VirtualMCPServer) -> OperationalConfig:
    timeouts = vmcp.spec.config.operational.timeouts
    return OperationalConfig(
        timeouts=TimeoutsConfig(
            call=timeouts.default,  # a Go-style duration string, parsed by the model
            per_workload={
                name: WorkloadTimeouts(call=value)
                for name, value in sorted((timeouts.per_workload or {}).items())
            },
        )
    )


def build_incoming_auth(vmcp: VirtualMCPServer, settings: ReconcilerSettings) -> IncomingAuthConfig:
    incoming = vmcp.spec.incoming_auth
    if incoming.type != "oidc":
        return IncomingAuthConfig(type="anonymous")
    url = service_url(vmcp, settings)
    oidc = inbound_oidc(incoming.oidc_config, default_audience=url, default_resource_url=url)
    return IncomingAuthConfig(type="oidc", oidc=oidc)


def build_vmcp_config(
    vmcp: VirtualMCPServer,
    backends: Sequence[Backend],
    settings: ReconcilerSettings,
    tool_configs: Mapping[str, MCPToolConfig | None] | None = None,
) -> VMCPConfig:
    """The gateway's config file: backends sorted by name, then the policy."""
    ordered = sorted(backends, key=lambda b: b.member.name)
    return VMCPConfig(
        name=vmcp.metadata.name or "",
        backends=[
            BackendConfig(
                name=b.member.name, url=b.member.url or "", transport=b.member.transport, auth=b.auth
            )
            for b in ordered
        ],
        aggregation=build_aggregation(vmcp, [b.member.name for b in ordered], tool_configs or {}),
        operational=build_operational(vmcp),
        incoming_auth=build_incoming_auth(vmcp, settings),
    )


def restart_hash(config: VMCPConfig, settings: ReconcilerSettings) -> str:
    """Hash of what the gateway reads only when it starts (never the backends or the policy)."""
    incoming = config.incoming_auth.model_dump_json(by_alias=True, exclude_none=True)
    return children.config_hash(
        "\n".join([settings.proxy_image, settings.proxy_image_pull_policy, str(VMCP_PORT), incoming])
    )


def build_children(
    vmcp: VirtualMCPServer,
    owner_ref: JSON,
    settings: ReconcilerSettings,
    config: VMCPConfig,
    env: Sequence[JSON] = (),
) -> list[JSON]:
    """Every child manifest of ``vmcp`` (apply bodies: only the fields we own)."""
    objects = [build_config_map(vmcp, owner_ref, config)]
    if vmcp.spec.service_account is None:
        objects.append(build_service_account(vmcp, owner_ref))
    objects += [
        build_status_role(vmcp, owner_ref),
        build_status_role_binding(vmcp, owner_ref),
        build_deployment(vmcp, owner_ref, settings, restart_hash(config, settings), env),
        build_service(vmcp, owner_ref),
    ]
    return objects


def _meta(vmcp: VirtualMCPServer, name: str, owner_ref: JSON, **kwargs: Any) -> JSON:
    instance = vmcp.metadata.name or ""
    return object_meta(
        name, vmcp.metadata.namespace or "", owner_ref, labels(KIND, instance, COMPONENT), **kwargs
    )


def build_config_map(vmcp: VirtualMCPServer, owner_ref: JSON, config: VMCPConfig) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(vmcp, Names(vmcp.metadata.name or "").config, owner_ref),
        "data": {CONFIG_KEY: config.to_yaml()},
    }


def build_service_account(vmcp: VirtualMCPServer, owner_ref: JSON) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(vmcp, Names(vmcp.metadata.name or "").account, owner_ref),
        "automountServiceAccountToken": True,
    }


def build_status_role(vmcp: VirtualMCPServer, owner_ref: JSON) -> JSON:
    """Only what the gateway's health writer needs: this one object's status, by name."""
    names = Names(vmcp.metadata.name or "")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(vmcp, names.account, owner_ref),
        "rules": [
            {
                "apiGroups": ["mcp-operator.dev"],
                "resources": ["virtualmcpservers/status"],
                "resourceNames": [names.name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def build_status_role_binding(vmcp: VirtualMCPServer, owner_ref: JSON) -> JSON:
    names = Names(vmcp.metadata.name or "")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(vmcp, names.account, owner_ref),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.account},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": vmcp.spec.service_account or names.account,
                "namespace": vmcp.metadata.namespace or "",
            }
        ],
    }


def build_deployment(
    vmcp: VirtualMCPServer, owner_ref: JSON, settings: ReconcilerSettings, digest: str, env: Sequence[JSON]
) -> JSON:
    names = Names(vmcp.metadata.name or "")
    instance = names.name
    owned: JSON = {
        "name": CONTAINER,
        "image": settings.proxy_image,
        "args": [
            "vmcp",
            "--config",
            f"{CONFIG_DIR}/{CONFIG_KEY}",
            "--host",
            "0.0.0.0",
            "--port",
            str(VMCP_PORT),
        ],
    }
    container: JSON = {
        **owned,
        "imagePullPolicy": settings.proxy_image_pull_policy,
        "ports": [{"name": "http", "containerPort": VMCP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    container["env"] = [
        {"name": "VMCP_NAME", "value": names.name},
        {"name": "VMCP_NAMESPACE", "value": vmcp.metadata.namespace or ""},
        *(dict(e) for e in env),
    ]
    if vmcp.spec.resources is not None:
        container["resources"] = vmcp.spec.resources.model_dump(exclude_none=True)
    pod_spec: JSON = {
        "serviceAccountName": vmcp.spec.service_account or names.account,
        "automountServiceAccountToken": True,  # the health writer's token (see build_status_role)
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": names.config}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    selector = selector_labels(KIND, instance, COMPONENT)
    template: JSON = {
        "metadata": {
            "labels": labels(KIND, instance, COMPONENT),
            "annotations": {CONFIG_HASH_ANNOTATION: digest},
        },
        "spec": pod_spec,
    }
    template = apply_user_patch(template, vmcp.spec.pod_template_spec, owned, selector)
    spec: JSON = {"selector": {"matchLabels": selector}, "template": template}
    if vmcp.spec.replicas is not None:
        spec["replicas"] = vmcp.spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(vmcp, names.gateway, owner_ref),
        "spec": spec,
    }


def build_service(vmcp: VirtualMCPServer, owner_ref: JSON) -> JSON:
    names = Names(vmcp.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(vmcp, names.gateway, owner_ref),
        "spec": {
            "type": vmcp.spec.service_type,
            "selector": selector_labels(KIND, names.name, COMPONENT),
            "ports": [{"name": "http", "port": VMCP_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
