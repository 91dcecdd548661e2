"""Readiness and consumer-lag metrics wired to a real Kafka broker, served over real HTTP.

This is the wiring a long-running service does: a readiness callback made of
"the broker answers" and "the consumer has its assignment", and the lag gauge
computed from the broker's end offsets. It needs a broker, so it is marked
``integration`` (the session fixture ``kafka_bootstrap`` provides one).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from sigex.observability import GatewayMetrics, NamedCheck, OperationsServer, readiness_of

pytestmark = pytest.mark.integration


def status_of(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(condition_met: Callable[[], bool], attempts: int = 100) -> bool:
    """Poll a condition (not a timing assertion: only a bound so a broken broker ends the test)."""
    for _ in range(attempts):
        if condition_met():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"sigex-observability-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def test_readiness_and_lag_follow_the_real_broker(kafka_bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for number in range(5):
        producer.send(topic, f"signal {number}".encode())
    producer.flush()
    producer.close()

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )

    def broker_answers() -> bool:
        return bool(admin.describe_cluster().get("brokers"))

    readiness = readiness_of(
        (
            NamedCheck("broker", broker_answers),
            NamedCheck("assignment", lambda: bool(consumer.assignment())),
        )
    )
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    try:
        with OperationsServer(
            registry=registry, readiness=readiness, host="127.0.0.1", port=0
        ) as server:
            assert status_of(server.port, "/livez")[0] == 200
            assert status_of(server.port, "/readyz") == (503, "not ready: assignment\n")

            consumer.subscribe([topic])

            def assigned() -> bool:
                consumer.poll(timeout_ms=200, max_records=2)
                return bool(consumer.assignment())

            assert wait_for(assigned)
            assert status_of(server.port, "/readyz") == (200, "ready\n")

            partition = TopicPartition(topic, 0)
            end = consumer.end_offsets([partition])[partition]
            lag = end - consumer.position(partition)
            metrics.set_consumer_lag(topic, 0, lag)
            metrics.signal_received("laa.frequent-mover")
            body = status_of(server.port, "/metrics")[1]
            assert end == 5
            assert (
                f'sigex_gateway_consumer_lag{{partition="0",topic="{topic}"}} {float(lag)}' in body
            )
            assert 'sigex_gateway_signals_in_total{signal="laa.frequent-mover"} 1.0' in body

            consumer.unsubscribe()
            metrics.forget_partition(topic, 0)
            assert status_of(server.port, "/readyz")[0] == 503
            assert "sigex_gateway_consumer_lag{" not in status_of(server.port, "/metrics")[1]
    finally:
        consumer.close()
        admin.close()
