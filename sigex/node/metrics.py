"""What the node counts, served at ``/metrics`` in Prometheus' text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sigex.observability import NAMESPACE, SubscriberMetrics


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "node_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.duration = Histogram(
            "node_request_seconds",
            "Time to answer an HTTP request, by route (long polls included).",
            ["route"],
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
        )
        self.records = Counter(
            "node_records",
            "Records of publish requests, by outcome (published, refused, invalid).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "node_deliveries",
            "Signals handed out (lent) and acknowledged through the node.",
            ["event"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.inbox = Gauge(
            "node_inbox_signals",
            "Signals in the node's inbox: waiting, lent out, acknowledged but not yet settled.",
            ["state"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "node_webhook_failures",
            "Pushes to the webhook that were not answered with 2xx (the signals come again).",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.subscriber = SubscriberMetrics(self.registry)
