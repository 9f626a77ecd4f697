"""The gateway config file: ToolHive keys, defaults, durations and errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.vmcp_config import VMCPConfig, load_vmcp_config, parse_duration

TOOLHIVE_STYLE = """
name: team-tools
backends:
  - name: git
    url: http://git.default.svc.cluster.local:8080/mcp
  - name: everything
    url: http://everything.default.svc.cluster.local:8080/sse
    transport: sse
    auth:
      type: bearerToken
      tokenSecretRef: {env: EVERYTHING_TOKEN}
aggregation:
  conflictResolution: priority
  conflictResolutionConfig:
    priorityOrder: [git, everything]
  tools:
    - workload: everything
      filter: [echo, "get-*"]
      overrides:
        echo: {name: ev_echo, description: Echo back}
operational:
  timeouts: {call: 1m30s, perWorkload: {git: {list: 500ms}}}
  failureHandling:
    circuitBreaker: {failureThreshold: 5, timeout: 60s}
"""


def test_a_toolhive_style_file_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "vmcp.yaml"
    path.write_text(TOOLHIVE_STYLE)
    config = load_vmcp_config(path)
    assert config.backends[1].transport == "sse"
    assert config.aggregation.tools_for("everything").overrides["echo"].name == "ev_echo"  # type: ignore[union-attr]
    assert config.operational.timeouts.call_for("git") == 90.0
    assert config.operational.timeouts.list_for("git") == 0.5
    assert config.operational.timeouts.list_for("everything") == 10.0
    assert config.operational.failure_handling.circuit_breaker.timeout == 60.0
    assert config.aggregation.conflict_resolution_config.prefix_format == "{workload}_"
    dumped = config.to_file_dict()
    assert dumped["operational"]["timeouts"]["call"] == "90s"
    assert dumped["backends"][1]["auth"] == {
        "type": "bearerToken",
        "tokenSecretRef": {"env": "EVERYTHING_TOKEN"},
    }
    assert VMCPConfig.model_validate(dumped) == config


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"aggregation": {"conflictResolution": "priority"}}, "needs aggregation.conflictResolutionConfig"),
        ({"aggregation": {"conflictResolution": "random"}}, "conflictResolution"),
        (
            {"aggregation": {"conflictResolutionConfig": {"prefixFormat": "{name}_"}}},
            "only one is '{workload}'",
        ),
        ({"backends": [{"name": "a", "url": "http://x/mcp"}, {"name": "a", "url": "http://y/mcp"}]}, "twice"),
        ({"backends": [{"name": "A b", "url": "http://x/mcp"}]}, "backend name"),
        ({"backends": [{"name": "a", "url": "http://u:p@x/mcp"}]}, "credentials"),
        ({"backends": [{"name": "a", "url": "x/mcp"}]}, "http:// or https://"),
        ({"operational": {"timeouts": {"call": "soon"}}}, "invalid duration"),
        ({"incomingAuth": {"type": "oidc"}}, "needs incomingAuth.oidc"),
        ({"backend": []}, "backend"),
    ],
)
def test_invalid_configs_name_the_field_and_the_fix(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        VMCPConfig.model_validate({"name": "x", **patch})


def test_load_reports_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_vmcp_config(path)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("250ms", 0.25), ("1m30s", 90.0), (2, 2.0), ("1.5", 1.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_optimizers_semantic_keys_read_as_toolhive_writes_them() -> None:
    optimizer = {
        "embeddingService": "http://127.0.0.1:8080/v1",  # a hand-written file may name the gateway's own host
        "embeddingProvider": "openai",
        "embeddingModel": "text-embedding-3-small",
        "embeddingServiceTimeout": "15s",
        "embeddingHeaders": {"x-cache-key": "c"},
        "hybridSearchSemanticRatio": "0.7",  # strings, as in ToolHive's config
        "semanticDistanceThreshold": "0.8",
    }
    config = VMCPConfig.model_validate({"name": "gw", "optimizer": optimizer}).optimizer
    assert config is not None
    assert (config.timeout, config.semantic_ratio, config.distance_threshold) == (15.0, 0.7, 0.8)
    defaults = VMCPConfig.model_validate(
        {"name": "gw", "optimizer": {"embeddingService": "http://e"}}
    ).optimizer
    assert defaults is not None  # ToolHive's defaults
    assert (defaults.provider, defaults.timeout, defaults.semantic_ratio, defaults.distance_threshold) == (
        "tei",
        30.0,
        0.5,
        1.0,
    )


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        (
            {"embeddingProvider": "openai", "embeddingService": "http://e"},
            "optimizer.embeddingModel: is required",
        ),
        ({"embeddingService": "http://e", "embeddingHeaders": {"x": "y"}}, "set embeddingProvider: openai"),
        ({"embeddingService": "file:///tmp/s"}, "must be an http:// or https:// URL"),
        ({"hybridSearchSemanticRatio": 1.2}, "hybridSearchSemanticRatio"),
        ({"semanticDistanceThreshold": -1}, "semanticDistanceThreshold"),
        ({"embeddingServiceTimeout": "soon"}, "invalid duration"),
    ],
)
def test_bad_semantic_keys_name_the_field(optimizer: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        VMCPConfig.model_validate({"name": "gw", "optimizer": optimizer})
