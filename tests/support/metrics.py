"""What a manager running in the test's event loop tells through its metrics: writes, reconciles, idleness."""

from __future__ import annotations

from controller.core import Manager

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def metric_total(manager: Manager, family: str, sample_suffix: str = "_total", **labels: str) -> float:
    """The sum of a metric family's samples whose labels include ``labels``."""
    total = 0.0
    for metric in manager.metrics.registry.collect():
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name.endswith(sample_suffix) and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


def writes(manager: Manager) -> float:
    """Write requests (POST/PUT/PATCH/DELETE) the manager's client has sent so far."""
    return sum(metric_total(manager, "rest_client_requests", method=method) for method in WRITE_METHODS)


def reconciles(manager: Manager, controller: str) -> float:
    return metric_total(manager, "controller_runtime_reconcile", controller=controller)


def idle(manager: Manager) -> bool:
    """No key waits in any work queue and no reconcile runs."""
    queued = metric_total(manager, "workqueue_depth", sample_suffix="")
    return queued == 0 and metric_total(manager, "controller_runtime_active_workers", sample_suffix="") == 0
