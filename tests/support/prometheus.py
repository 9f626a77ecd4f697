"""A real Prometheus (Debian's ``prometheus`` package) for the tests: started on loopback with a temp data
dir and a generated config, queried over its HTTP API, stopped by pid.

``hack/cluster up`` installs the package (hack/controlplane.py, ``APT_PACKAGES``); ``promtool`` ships in it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.gateway_processes import Proc, free_port, start, wait_http

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
MISSING = (
    f"{PROMETHEUS} is not installed: `hack/cluster up` installs Debian's prometheus package "
    "(or: apt-get install prometheus)"
)


def prometheus_rules(prometheus_rule: dict[str, Any]) -> dict[str, Any]:
    """The rule file Prometheus reads from a prometheus-operator ``PrometheusRule`` (its ``spec``)."""
    assert prometheus_rule["kind"] == "PrometheusRule", prometheus_rule["kind"]
    return {"groups": prometheus_rule["spec"]["groups"]}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


class Prometheus:
    """One running Prometheus; :meth:`query` returns the instant vector of an expression."""

    def __init__(self, proc: Proc, port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", state="active")["activeTargets"])

    def wait_targets_up(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Until ``count`` active targets were scraped successfully (fails with their last errors)."""
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if len(targets) == count and all(t["health"] == "up" for t in targets):
                return targets
            if time.monotonic() > deadline:
                summary = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets]
                raise AssertionError(f"targets not up within {timeout}s: {summary}")
            time.sleep(0.5)  # the poll interval of this deadline loop (Prometheus scrapes every second)


@contextmanager
def running_prometheus(config: dict[str, Any], workdir: Path) -> Iterator[Prometheus]:
    """Prometheus with ``config`` (rule files relative to ``workdir``), stopped on exit."""
    assert PROMETHEUS.exists(), MISSING
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        str(PROMETHEUS),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    proc = start("prometheus", argv, workdir)
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc)
        yield Prometheus(proc, port)
    finally:
        proc.stop()
