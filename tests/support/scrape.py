"""The Prometheus scrape config prometheus-operator would generate from the chart's ServiceMonitor and
PodMonitor, pointed at processes on loopback instead of pod IPs.

Each monitor becomes one job with prometheus-operator's job name and target labels (``job``,
``namespace``, ``pod``, ``service``, ``container``, ``endpoint``), its path, interval and timeout; a
local process becomes a target only when the monitor's selector selects the labels its pod would carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class LocalPod:
    """A process standing in for a pod: its listen address, namespace, name, labels and its metrics port
    as the pod spec names it."""

    address: str
    namespace: str
    name: str
    labels: dict[str, str]
    port: str
    container: str
    service: str | None = None
    service_labels: dict[str, str] = field(default_factory=dict)


def selects(selector: JSON, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels; matchExpressions In / NotIn / Exists) against ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def _in_namespace(monitor: JSON, namespace: str) -> bool:
    chosen = monitor["spec"].get("namespaceSelector", {})
    if chosen.get("any"):
        return True
    names = chosen.get("matchNames") or [monitor["metadata"]["namespace"]]
    return namespace in names


def _job(name: str, endpoint: JSON, targets: list[JSON]) -> JSON:
    job: JSON = {
        "job_name": name,
        "metrics_path": endpoint.get("path", "/metrics"),
        "static_configs": targets,
    }
    if "interval" in endpoint:
        job["scrape_interval"] = endpoint["interval"]
    if "scrapeTimeout" in endpoint:
        job["scrape_timeout"] = endpoint["scrapeTimeout"]
    return job


def _target(pod: LocalPod, job: str, endpoint: str, service: str | None) -> JSON:
    labels = {"job": job, "namespace": pod.namespace, "pod": pod.name, "container": pod.container}
    labels["endpoint"] = endpoint
    if service is not None:
        labels["service"] = service
    return {"targets": [pod.address], "labels": labels}


def scrape_configs(monitors: list[JSON], pods: list[LocalPod], interval: str | None = None) -> list[JSON]:
    """One job per monitor endpoint; ``interval`` (e.g. "1s" for a test) replaces the monitors' own
    interval and timeout, nothing else."""
    jobs: list[JSON] = []
    for monitor in monitors:
        meta, spec = monitor["metadata"], monitor["spec"]
        if monitor["kind"] == "ServiceMonitor":
            endpoints, prefix = spec["endpoints"], f"serviceMonitor/{meta['namespace']}/{meta['name']}"
            chosen = [
                p
                for p in pods
                if p.service is not None
                and _in_namespace(monitor, p.namespace)
                and selects(spec["selector"], p.service_labels)
            ]
        else:
            assert monitor["kind"] == "PodMonitor", monitor["kind"]
            endpoints, prefix = spec["podMetricsEndpoints"], f"podMonitor/{meta['namespace']}/{meta['name']}"
            chosen = [
                p for p in pods if _in_namespace(monitor, p.namespace) and selects(spec["selector"], p.labels)
            ]
        for index, declared in enumerate(endpoints):
            endpoint = (
                declared
                if interval is None
                else {**declared, "interval": interval, "scrapeTimeout": interval}
            )
            # prometheus-operator's job label: the Service's name, or the PodMonitor's namespace/name.
            targets = [
                _target(p, p.service, endpoint["port"], p.service)
                if monitor["kind"] == "ServiceMonitor" and p.service is not None
                else _target(p, f"{meta['namespace']}/{meta['name']}", endpoint["port"], None)
                for p in chosen
                if p.port == endpoint["port"]
            ]
            jobs.append(_job(f"{prefix}/{index}", endpoint, targets))
    return jobs
