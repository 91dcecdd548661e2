"""The subscriber's metrics: lag per partition it holds (and none for those it gave up), rejoins."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sigex.observability import SubscriberMetrics

TOPIC = "sigex.payroll.bsn-mismatch.out.GM0363"


def lag_of(registry: CollectorRegistry, partition: int) -> float | None:
    return registry.get_sample_value(
        "sigex_subscriber_consumer_lag", {"topic": TOPIC, "partition": str(partition)}
    )


def test_lag_follows_the_partitions_held() -> None:
    registry = CollectorRegistry()
    metrics = SubscriberMetrics(registry)
    metrics.set_lag({(TOPIC, 0): 2_228, (TOPIC, 1): 0})
    assert (lag_of(registry, 0), lag_of(registry, 1)) == (2_228, 0)
    metrics.set_lag({(TOPIC, 1): 5})  # partition 0 went to another member
    assert (lag_of(registry, 0), lag_of(registry, 1)) == (None, 5)


def test_rejoins_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = SubscriberMetrics(registry)
    metrics.rejoined()
    metrics.rejoined()
    assert registry.get_sample_value("sigex_subscriber_rejoins_total") == 2
