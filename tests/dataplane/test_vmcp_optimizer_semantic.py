"""The optimizer's semantic search over real parts: ``mcp-operator vmcp`` in front of the fixture server and
mcp-server-time (behind the project's proxy), with a real embedding model (wordllama,
:mod:`tests.support.embedding_server`) behind TEI's and OpenAI's APIs.

A description sharing no word with a tool finds it by meaning and not by keywords alone; both providers
are spoken as documented (the OpenAI key from the gateway's ``OPENAI_API_KEY``, the extra headers); the
tools are embedded once per catalogue; a stopped or slow service leaves ``find_tool`` to the keywords,
within the timeout, counted in the metrics and warned about once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support import gateway_processes as gp
from tests.support.embedding_server import requests_logged, start_embedding_server
from tests.support.gateway_processes import BIN, Proc
from tests.support.processes import json_records

pytestmark = pytest.mark.slow

API_KEY = "sk-semantic-test"  # the gateway's OPENAI_API_KEY
CLOCK = "clock reading for a city"  # no word in common with "Get current time in a specific timezone"
SUM = "sum of numbers"  # none with alpha's "Add two integers." (parameters a, b)


@dataclass
class Setup:
    """The gateway under test, its embedding service and how to point it elsewhere."""

    url: str
    gateway: Proc
    embeddings: Proc
    embeddings_url: str
    config_path: Path
    ports: dict[str, int]
    logdir: Path
    current: dict[str, Any] | None = None

    def configure(self, **optimizer: Any) -> None:
        config = {
            "name": "gw",
            "backends": [
                {"name": n, "url": f"http://127.0.0.1:{self.ports[n]}/mcp"} for n in ("alpha", "time")
            ],
            "aggregation": {"tools": [{"workload": "alpha", "filter": ["echo", "add"]}]},
            "optimizer": {
                "maxToolsToReturn": 2,
                **optimizer,
            },  # ratio 0.5: one place by meaning, one by words
        }
        if config != self.current:  # the gateway reloads only a changed file
            gp.reload_config(self.url, self.config_path, config)
            self.current = config

    def tei(self, url: str | None = None, **more: Any) -> None:
        self.configure(embeddingService=url or self.embeddings_url, **more)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx2.get(f"{self.url}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def warnings(self) -> list[dict[str, Any]]:
        records = json_records(self.gateway.log.read_text(errors="replace"))
        return [r for r in records if str(r.get("event", "")).startswith("embedding service failed")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    logdir = tmp_path_factory.mktemp("vmcp-semantic")
    ports = {n: gp.free_port() for n in ("alpha", "time", "embeddings", "gateway")}
    procs: list[Proc] = []
    try:
        procs.append(gp.fixture_server("alpha", ports["alpha"], logdir))
        time_server = [str(BIN / "mcp-server-time"), "--local-timezone", "UTC"]
        procs.append(gp.proxied_stdio("time", ports["time"], time_server, logdir))
        embeddings = start_embedding_server(ports["embeddings"], logdir)
        procs.append(embeddings)
        config_path = logdir / "vmcp.yaml"
        gp.write_config(config_path, {"name": "gw", "backends": []})
        url, gateway = gp.vmcp_gateway(ports["gateway"], config_path, logdir, env={"OPENAI_API_KEY": API_KEY})
        procs.append(gateway)
        found = Setup(
            url, gateway, embeddings, f"http://127.0.0.1:{ports['embeddings']}", config_path, ports, logdir
        )
        found.tei()
        gp.wait_until(lambda: gp.get_json(f"{url}/status")["phase"] == "Ready", what="both backends ready")
        yield found
    finally:
        for proc in procs:
            proc.stop()


async def _found(setup: Setup, description: str) -> list[str]:
    """The names ``find_tool`` answers for ``description``, as a client sees them."""
    async with Client(f"{setup.url}/mcp") as client:
        result = await client.call_tool("find_tool", {"tool_description": description})
    assert not result.is_error, result
    answer: dict[str, Any] = json.loads("".join(getattr(c, "text", "") for c in result.content))
    for tool in answer["tools"]:
        assert "inputSchema" in tool  # what call_tool needs
    return [tool["name"] for tool in answer["tools"]]


async def test_a_description_sharing_no_word_with_a_tool_finds_it_by_meaning(setup: Setup) -> None:
    setup.tei()
    assert await _found(setup, CLOCK) == ["time_get_current_time"]
    assert await _found(setup, SUM) == ["alpha_add"]
    # the keyword side still has its place: a word of the description finds its tool too
    assert "alpha_echo" in await _found(setup, "echo what I say")
    tei = [r for r in requests_logged(setup.embeddings) if r["path"] == "/embed"]
    assert tei and not any("authorization" in r["headers"] for r in tei)  # TEI is sent no key

    setup.configure()  # no embedding service: keywords alone
    assert await _found(setup, CLOCK) == []
    assert await _found(setup, SUM) == []


async def test_the_tools_are_embedded_once_per_catalogue_and_the_query_per_call(setup: Setup) -> None:
    setup.tei(hybridSearchSemanticRatio="1.0")
    await _found(setup, CLOCK)
    before = requests_logged(setup.embeddings)
    for description in (CLOCK, SUM, "tell me the hour"):
        await _found(setup, description)
    after = requests_logged(setup.embeddings)[len(before) :]
    assert [r["inputs"] for r in after] == [1, 1, 1]  # the query alone; the four tools were embedded before
    assert any(r["inputs"] == 4 for r in before)  # in one batch


async def test_the_openai_api_gets_the_model_the_key_and_the_headers(setup: Setup) -> None:
    openai = {
        "embeddingProvider": "openai",
        "embeddingService": f"{setup.embeddings_url}/v1",
        "embeddingModel": "wordllama",
        "embeddingHeaders": {"x-cache-key": "semantic-test"},
    }
    before = len(requests_logged(setup.embeddings))
    setup.configure(**openai)
    assert await _found(setup, CLOCK) == ["time_get_current_time"]
    assert await _found(setup, SUM) == ["alpha_add"]
    sent = requests_logged(setup.embeddings)[before:]
    assert {r["path"] for r in sent} == {"/v1/embeddings"}
    assert {r["model"] for r in sent} == {"wordllama"}
    assert [r["inputs"] for r in sent] == [4, 1, 1]  # another service: the tools embedded anew
    for request in sent:
        assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
        assert request["headers"]["x-cache-key"] == "semantic-test"


async def test_a_stopped_service_leaves_find_tool_to_the_keywords(setup: Setup) -> None:
    port = gp.free_port()
    own = start_embedding_server(port, setup.logdir, name="embeddings-stopped")
    try:
        setup.tei(f"http://127.0.0.1:{port}")
        assert await _found(setup, CLOCK) == ["time_get_current_time"]
    finally:
        own.stop()
    errors = setup.metric("vmcp_embedding_requests_total", outcome="error")
    fallbacks = setup.metric("vmcp_optimizer_keyword_fallbacks_total")
    warned = len(setup.warnings())
    assert await _found(setup, "add two integers") == ["alpha_add"]  # keywords still answer
    assert await _found(setup, CLOCK) == []
    assert setup.metric("vmcp_optimizer_keyword_fallbacks_total") == fallbacks + 2
    assert setup.metric("vmcp_embedding_requests_total", outcome="error") >= errors + 2
    assert len(setup.warnings()) - warned <= 1  # one warning per interval, not one per call
    warning = setup.warnings()[-1]  # this service's, logged now
    assert warning["embedding_service"] == f"http://127.0.0.1:{port}"
    assert warning["level"] == "warning"


async def test_a_slow_service_is_given_up_after_the_timeout(setup: Setup) -> None:
    port = gp.free_port()
    slow = start_embedding_server(port, setup.logdir, delay=60.0, name="embeddings-slow")
    try:
        setup.tei(f"http://127.0.0.1:{port}", embeddingServiceTimeout="1s")
        timeouts = setup.metric("vmcp_embedding_requests_total", outcome="timeout")
        started = time.monotonic()
        assert await _found(setup, "add two integers") == ["alpha_add"]
        assert time.monotonic() - started < 30.0  # the service would have answered after 60 s
        assert setup.metric("vmcp_embedding_requests_total", outcome="timeout") == timeouts + 1
        assert requests_logged(slow), "the request reached the service"
    finally:
        slow.stop()
