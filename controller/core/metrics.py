"""Prometheus metrics with controller-runtime's names, so existing dashboards and alerts work.

One :class:`Metrics` object owns its own registry; the manager passes it to every component (no global
state, so several managers can live in one test process).
"""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

RECONCILE_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    3.5,
    4.0,
    4.5,
    5,
    6,
    7,
    8,
    9,
    10,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
)
QUEUE_BUCKETS = tuple(10.0**exp for exp in range(-8, 2))  # 10 ns .. 10 s, as client-go
REST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


Labels = tuple[str, ...]
Buckets = tuple[float, ...]
CONTROLLER: Labels = ("controller",)
QUEUE: Labels = ("name", "controller")
VERB_HOST: Labels = ("verb", "host")
LEASE_NAME: Labels = ("name",)
INFORMER: Labels = ("resource", "namespace")


class Metrics:
    """Every metric the core exports, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        counter, gauge = partial(Counter, registry=self.registry), partial(Gauge, registry=self.registry)

        def histogram(name: str, documentation: str, labels: Labels, buckets: Buckets) -> Histogram:
            return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

        self.reconcile_total = counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ("controller", "result"),
        )
        self.reconcile_errors_total = counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            CONTROLLER,
        )
        self.terminal_reconcile_errors_total = counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            CONTROLLER,
        )
        self.reconcile_panics_total = counter(
            "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation exceptions (unexpected raises) per controller",
            CONTROLLER,
        )
        self.reconcile_time_seconds = histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            CONTROLLER,
            RECONCILE_BUCKETS,
        )
        self.max_concurrent_reconciles = gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            CONTROLLER,
        )
        self.active_workers = gauge(
            "controller_runtime_active_workers", "Number of currently used workers per controller", CONTROLLER
        )
        self.workqueue_depth = gauge("workqueue_depth", "Current depth of workqueue", QUEUE)
        self.workqueue_adds_total = counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", QUEUE
        )
        self.workqueue_queue_duration_seconds = histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            QUEUE,
            QUEUE_BUCKETS,
        )
        self.workqueue_work_duration_seconds = histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            QUEUE,
            QUEUE_BUCKETS,
        )
        self.workqueue_retries_total = counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", QUEUE
        )
        self.workqueue_unfinished_work_seconds = gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads.",
            QUEUE,
        )
        self.workqueue_longest_running_processor_seconds = gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            QUEUE,
        )
        self.rest_client_requests_total = counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host",
            ("code", "method", "host"),
        )
        self.rest_client_request_duration_seconds = histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds, broken down by verb and host",
            VERB_HOST,
            REST_BUCKETS,
        )
        self.rest_client_rate_limiter_duration_seconds = histogram(
            "rest_client_rate_limiter_duration_seconds",
            "Client side rate limiter latency in seconds, broken down by verb and host",
            VERB_HOST,
            REST_BUCKETS,
        )
        self.rest_client_request_retries_total = counter(
            "rest_client_request_retries_total",
            "Number of request retries, partitioned by status code, verb, and host",
            ("code", "verb", "host"),
        )
        self.leader_election_master_status = gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
            "1 indicates master. 'name' is the string used to identify the lease.",
            LEASE_NAME,
        )
        self.leader_election_slowpath_total = counter(
            "leader_election_slowpath_total",
            "Total number of slow path exercised in renewing leader leases.",
            LEASE_NAME,
        )
        self.informer_synced = gauge(
            "mcp_operator_informer_synced",
            "1 when the informer for a resource and namespace scope has completed its initial list",
            INFORMER,
        )
        self.informer_relists_total = counter(
            "mcp_operator_informer_relists_total",
            "Number of full LISTs per informer (the first one and every relist after 410 Gone or an error)",
            INFORMER,
        )

    def render(self) -> bytes:
        """The text exposition format, for ``/metrics``."""
        return bytes(generate_latest(self.registry))
