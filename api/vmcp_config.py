"""The virtual MCP gateway's config file (``mcp-operator vmcp --config FILE``).

The operator renders it into ConfigMap ``<name>-vmcp`` from a VirtualMCPServer and its group's members;
users may also write it by hand to run the gateway outside Kubernetes. Keys follow ToolHive's vMCP
config (camelCase, ``{workload}_`` prefix format, ``prefix | priority | manual`` conflict resolution) so a
ToolHive config ports with few edits. The file never holds secret values: outbound credentials are
described by reference (see ``auth``) and resolved by the gateway at runtime.

Durations accept ToolHive's Go-style strings (``"30s"``, ``"500ms"``, ``"1m30s"``) or a number of
seconds, and are dumped back as seconds strings (``"30s"``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from api.auth_config import HeaderForwardConfig, OIDCConfig, OutboundAuthConfig
from api.authz_config import CedarConfig
from api.checks import passthrough_header_problems
from api.composite import CompositeToolConfig
from api.composite_rules import composite_tools_problems
from api.config_model import ConfigFileModel
from api.durations import Duration, duration_seconds, parse_duration
from api.optimizer_rules import (
    DEFAULT_SEMANTIC_DISTANCE_THRESHOLD,
    DEFAULT_SEMANTIC_RATIO,
    DEFAULT_TIMEOUT_SECONDS,
    optimizer_setting_problems,
)
from api.proxy_config import AuditConfig
from api.scaling_config import RateLimitConfig, SessionStorageConfig

__all__ = [
    "DEFAULT_PREFIX_FORMAT",
    "AggregationConfig",
    "BackendConfig",
    "CircuitBreakerConfig",
    "CodeModeConfig",
    "ConflictResolution",
    "ConflictResolutionConfig",
    "FailureHandlingConfig",
    "IncomingAuthConfig",
    "OperationalConfig",
    "OptimizerConfig",
    "PartialFailureMode",
    "TimeoutsConfig",
    "ToolOverride",
    "VMCPConfig",
    "WorkloadTimeouts",
    "WorkloadToolConfig",
    "duration_seconds",
    "load_vmcp_config",
    "parse_duration",
    "parse_vmcp_config",
    "validate_prefix_format",
]

DEFAULT_PREFIX_FORMAT = "{workload}_"
"""ToolHive's default: backend ``git`` exposes ``git_status`` for its ``status`` tool."""

ConflictResolution = Literal["prefix", "priority", "manual"]

# MCP 2025-11-25 tool names: 1-128 characters from A-Z a-z 0-9 _ - . (case-sensitive).
_TOOL_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.\-]*\Z")
_BACKEND_NAME = re.compile(r"^[a-z0-9]([a-z0-9_.\-]{0,61}[a-z0-9])?\Z")


def validate_prefix_format(prefix_format: str) -> str:
    """Check a ``prefixFormat``: the only placeholder is ``{workload}``; other characters must be legal
    in an MCP tool name (``A-Z a-z 0-9 _ - .``). Returns the format unchanged, raises ValueError."""
    literal = prefix_format.replace("{workload}", "")
    if "{" in literal or "}" in literal:
        raise ValueError(
            f"prefixFormat {prefix_format!r} has an unknown placeholder: the only one is '{{workload}}' "
            "(e.g. '{workload}_', '{workload}.' or a literal prefix)"
        )
    if not _TOOL_NAME_CHARS.match(literal):
        raise ValueError(
            f"prefixFormat {prefix_format!r} has characters not allowed in MCP tool names: "
            "use only letters, digits, '_', '-' and '.' besides '{workload}'"
        )
    if not prefix_format:
        raise ValueError("prefixFormat must not be empty (the default is '{workload}_')")
    return prefix_format


class _Model(ConfigFileModel):
    """This file's models."""


class BackendConfig(_Model):
    """One MCP server behind the gateway (a group member's ``status.url``, or any reachable URL)."""

    name: str = Field(description="Backend (workload) name; the `{workload}` in prefixFormat.")
    url: str = Field(description="MCP endpoint, e.g. http://srv.ns.svc.cluster.local:8080/mcp.")
    transport: Literal["streamable-http", "sse"] = Field(
        default="streamable-http", description="streamable-http (default; era detected) or legacy sse."
    )
    auth: OutboundAuthConfig | None = Field(
        default=None,
        description="Outbound auth to this backend (api.auth_config; secrets by reference only).",
    )
    header_forward: HeaderForwardConfig | None = Field(
        default=None, description="Extra headers sent to this backend (plaintext or from secrets)."
    )
    allow_private_endpoint: bool | None = Field(
        default=None,
        description="false: the SSRF guard also refuses private addresses (an MCPServerEntry without "
        "allowPrivateEndpoint); unset or true: allowed (group members are in-cluster Services). "
        "Link-local, metadata and other never-proxied addresses are refused either way.",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM CA certificates that verify this backend's TLS certificate instead of the system "
        "CAs (an MCPServerEntry's caBundleRef, copied from its ConfigMap).",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _BACKEND_NAME.match(name):
            raise ValueError(
                f"backend name {name!r} must be 1-63 lowercase letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        return name

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"backend url {url!r} must be an http:// or https:// URL")
        if re.match(r"^https?://[^/]*@", url):
            raise ValueError(f"backend url {url!r} must not carry credentials; use `auth` instead")
        return url


class ToolOverride(_Model):
    """Rename and/or re-describe one backend tool (applied after filtering, before conflicts)."""

    name: str | None = Field(default=None, description="New tool name (before any prefix).")
    description: str | None = Field(default=None, description="New tool description.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str | None) -> str | None:
        if name is not None and (not name or len(name) > 128 or not _TOOL_NAME_CHARS.match(name)):
            raise ValueError(
                f"override name {name!r} must be 1-128 characters from letters, digits, '_', '-' and '.'"
            )
        return name


class WorkloadToolConfig(_Model):
    """Per-backend tool filter and overrides."""

    workload: str = Field(description="Backend name this entry applies to.")
    filter: list[str] = Field(
        default_factory=list,
        description="Allow-list of original tool names (shell globs allowed); empty = all tools.",
    )
    exclude_all: bool = Field(default=False, description="Hide every tool of this backend.")
    overrides: dict[str, ToolOverride] = Field(
        default_factory=dict, description="Original tool name -> {name, description}."
    )


class ConflictResolutionConfig(_Model):
    prefix_format: str = Field(
        default=DEFAULT_PREFIX_FORMAT,
        description="Prefix for `prefix` resolution; `{workload}` = backend name. Default '{workload}_'.",
    )
    priority_order: list[str] = Field(
        default_factory=list,
        description="Backend names, first wins, for `priority` resolution (unlisted backends rank last, "
        "by name).",
    )

    @field_validator("prefix_format")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return validate_prefix_format(value)

    @field_validator("priority_order")
    @classmethod
    def _check_order(cls, order: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in order:
            if name in seen:
                raise ValueError(f"priorityOrder lists backend {name!r} twice")
            seen.add(name)
        return order


class AggregationConfig(_Model):
    conflict_resolution: ConflictResolution = Field(
        default="prefix", description="prefix (default) | priority | manual."
    )
    conflict_resolution_config: ConflictResolutionConfig = Field(default_factory=ConflictResolutionConfig)
    tools: list[WorkloadToolConfig] = Field(default_factory=list, description="Per-backend filter/overrides.")

    @model_validator(mode="after")
    def _check(self) -> AggregationConfig:
        if self.conflict_resolution == "priority" and not self.conflict_resolution_config.priority_order:
            raise ValueError(
                "aggregation.conflictResolution 'priority' needs "
                "aggregation.conflictResolutionConfig.priorityOrder (backend names, first wins)"
            )
        seen: set[str] = set()
        for entry in self.tools:
            if entry.workload in seen:
                raise ValueError(f"aggregation.tools has two entries for workload {entry.workload!r}")
            seen.add(entry.workload)
        return self

    def tools_for(self, workload: str) -> WorkloadToolConfig | None:
        """The filter/override entry of one backend, if any."""
        return next((t for t in self.tools if t.workload == workload), None)


class WorkloadTimeouts(_Model):
    call: Duration | None = Field(default=None, description="tools/call, resources/read, prompts/get.")
    list: Duration | None = Field(default=None, description="tools/list and the other list requests.")


class TimeoutsConfig(_Model):
    call: Duration = Field(default=30.0, description="Per-backend call timeout; default 30s.")
    list: Duration = Field(default=10.0, description="Per-backend list timeout during fan-out; default 10s.")
    connect: Duration = Field(default=10.0, description="Connect + era detection per backend; default 10s.")
    per_workload: dict[str, WorkloadTimeouts] = Field(
        default_factory=dict, description="Backend name -> overrides of `call` / `list`."
    )

    def call_for(self, workload: str) -> float:
        override = self.per_workload.get(workload)
        return override.call if override and override.call else self.call

    def list_for(self, workload: str) -> float:
        override = self.per_workload.get(workload)
        return override.list if override and override.list else self.list


class CircuitBreakerConfig(_Model):
    """ToolHive's circuit breaker of one backend (off unless ``enabled``)."""

    enabled: bool = Field(default=False, description="Refuse calls to a backend after repeated failures.")
    failure_threshold: int = Field(default=5, ge=1, description="Consecutive failures to open; default 5.")
    timeout: Duration = Field(
        default=60.0, description="How long it stays open before a half-open trial; default 60s."
    )


PartialFailureMode = Literal["fail", "best_effort"]


class FailureHandlingConfig(_Model):
    """ToolHive's ``operational.failureHandling``, with its defaults."""

    health_check_interval: Duration = Field(default=30.0, description="Between health probes; default 30s.")
    health_check_timeout: Duration = Field(default=10.0, description="One probe's deadline; default 10s.")
    unhealthy_threshold: int = Field(
        default=3, ge=1, description="Consecutive failures before a backend is unhealthy; default 3."
    )
    partial_failure_mode: PartialFailureMode = Field(
        default="fail",
        description="While a backend is unavailable, lists fail (`fail`, default) or list the others "
        "(`best_effort`).",
    )
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)


class OperationalConfig(_Model):
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    failure_handling: FailureHandlingConfig = Field(default_factory=FailureHandlingConfig)
    default_list_ttl: Duration = Field(
        default=60.0,
        description="How long a backend's list is cached when it sends no ttlMs (legacy era); "
        "list_changed notifications invalidate it earlier. Default 60s.",
    )


class OptimizerConfig(_Model):
    """The tool optimizer (ToolHive's ``optimizer``): the gateway lists only ``find_tool`` and ``call_tool``;
    ``find_tool`` ranks the merged tools by keywords (BM25) and, with ``embeddingService``, also by meaning
    (a hybrid of the two, docs/vmcp.md); ``call_tool`` routes to one of them. Unset keys take ToolHive's
    defaults (the properties below say which)."""

    max_tools_to_return: int = Field(
        default=8, ge=1, le=50, description="Most tools one find_tool answer lists (1-50, default 8)."
    )
    embedding_service: str | None = Field(
        default=None,
        description="Base URL of the embedding service (tei: POST {url}/embed; openai: POST "
        "{url}/embeddings); unset: keywords only.",
    )
    embedding_provider: Literal["tei", "openai"] | None = Field(
        default=None, description="The service's API: tei (default) or openai."
    )
    embedding_model: str | None = Field(default=None, description="The model asked of an openai service.")
    embedding_headers: dict[str, str] | None = Field(
        default=None, description="Extra headers of every request to an openai service (no credentials)."
    )
    embedding_service_timeout: Duration | None = Field(
        default=None, description="Deadline of the service's answers (default 30s); then keywords only."
    )
    hybrid_search_semantic_ratio: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Share of the answer given to semantic matches (default 0.5).",
    )
    semantic_distance_threshold: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Largest cosine distance of a semantic match (default 1.0)."
    )

    @field_validator("embedding_service")
    @classmethod
    def _check_service(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^/@\s]+(/\S*)?$", url):
            raise ValueError(
                f"optimizer.embeddingService {url!r} must be an http:// or https:// URL without credentials"
            )
        return url

    @model_validator(mode="after")
    def _check(self) -> OptimizerConfig:
        problems = optimizer_setting_problems(
            service=self.embedding_service,
            provider=self.provider,
            model=self.embedding_model,
            headers=self.embedding_headers or {},
            field="optimizer",
        )
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        return self

    @property
    def provider(self) -> Literal["tei", "openai"]:
        return self.embedding_provider or "tei"

    @property
    def timeout(self) -> float:
        """Seconds the embedding service has to answer."""
        return self.embedding_service_timeout or DEFAULT_TIMEOUT_SECONDS

    @property
    def semantic_ratio(self) -> float:
        ratio = self.hybrid_search_semantic_ratio
        return DEFAULT_SEMANTIC_RATIO if ratio is None else ratio

    @property
    def distance_threshold(self) -> float:
        threshold = self.semantic_distance_threshold
        return DEFAULT_SEMANTIC_DISTANCE_THRESHOLD if threshold is None else threshold


class CodeModeConfig(_Model):
    """Code mode (ToolHive's ``codeMode``): the gateway adds the tool ``execute_tool_script``, which runs a
    Starlark script calling the gateway's tools as functions; each inner call is a ``tools/call`` of the
    caller's (docs/vmcp.md, "Code mode")."""

    enabled: bool = Field(default=False, description="Turns code mode on (ToolHive's default: off).")
    step_limit: int = Field(
        default=100_000, ge=1, description="Most interpreter steps of one script (default 100000)."
    )
    parallel_max_concurrency: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Branches of one parallel() running at once (1-100, default 10).",
    )
    tool_call_timeout: Duration = Field(
        default=30.0, gt=0, description="Deadline of each tool call a script makes (default 30s)."
    )


class IncomingAuthConfig(_Model):
    """Inbound auth of the gateway: anonymous, or OIDC JWT validation as the proxy does it."""

    type: Literal["anonymous", "oidc"] = "anonymous"
    oidc: OIDCConfig | None = Field(
        default=None, description="JWT validation settings (issuer, audience, jwksUrl, ...)."
    )
    authz: CedarConfig | None = Field(
        default=None,
        description="Cedar policies deciding every call, get, read and list (docs/auth.md); absent = none. "
        "Hot-reloaded with the file; a set that does not compile keeps the running one.",
    )

    @model_validator(mode="after")
    def _check(self) -> IncomingAuthConfig:
        if self.type == "oidc" and self.oidc is None:
            raise ValueError("incomingAuth.type 'oidc' needs incomingAuth.oidc (issuer, audience, ...)")
        return self


class VMCPConfig(_Model):
    """The whole gateway config file."""

    name: str = Field(description="The VirtualMCPServer's name (reported as the gateway's serverInfo).")
    backends: list[BackendConfig] = Field(default_factory=list)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    operational: OperationalConfig = Field(default_factory=OperationalConfig)
    incoming_auth: IncomingAuthConfig = Field(default_factory=IncomingAuthConfig)
    session_storage: SessionStorageConfig | None = Field(
        default=None, description="Where client sessions live (docs/scaling.md); unset: memory."
    )
    rate_limiting: RateLimitConfig | None = Field(
        default=None, description="Token-bucket limits on tools/call (docs/scaling.md)."
    )
    composite_tools: list[CompositeToolConfig] = Field(
        default_factory=list, description="Composite tools (api.composite): workflows over backend tools."
    )
    optimizer: OptimizerConfig | None = Field(
        default=None, description="The tool optimizer (find_tool / call_tool, docs/vmcp.md); unset: off."
    )
    code_mode: CodeModeConfig | None = Field(
        default=None, description="Code mode (execute_tool_script, docs/vmcp.md); unset or not enabled: off."
    )
    audit: AuditConfig | None = Field(
        default=None,
        description="The audit line of each tool call (as the proxy's); unset: on, no arguments.",
    )
    passthrough_headers: list[str] | None = Field(
        default=None,
        description="Client request headers forwarded to every backend (an allowlist; no credential).",
    )

    @model_validator(mode="after")
    def _check_backends(self) -> VMCPConfig:
        seen: set[str] = set()
        for backend in self.backends:
            if backend.name in seen:
                raise ValueError(f"backends lists {backend.name!r} twice; backend names must be unique")
            seen.add(backend.name)
        if problems := composite_tools_problems(self.composite_tools, "compositeTools"):
            raise ValueError("; ".join(str(p) for p in problems))
        if problems := passthrough_header_problems(self.passthrough_headers, "passthroughHeaders"):
            raise ValueError("; ".join(str(p) for p in problems))
        return self

    def backend(self, name: str) -> BackendConfig | None:
        return next((b for b in self.backends if b.name == name), None)

    def to_file_dict(self) -> dict[str, Any]:
        """The camelCase JSON-compatible dict the operator writes into the ConfigMap."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not data["compositeTools"]:
            del data["compositeTools"]  # the file of a gateway without composite tools stays as it was
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_file_dict(), sort_keys=False)


def load_vmcp_config(path: str | Path) -> VMCPConfig:
    """Read a YAML or JSON config file; raises ValueError naming the file and the bad field."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_vmcp_config(text, str(path), as_json=str(path).endswith(".json"))


def parse_vmcp_config(text: str, where: str, *, as_json: bool = False) -> VMCPConfig:
    """The config in ``text`` (YAML, or JSON with ``as_json``); ValueError naming ``where`` and the field."""
    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{where}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{where}: the config must be a mapping with at least `name` and `backends`")
    try:
        return VMCPConfig.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"{where}: invalid vmcp config: {exc}") from exc
