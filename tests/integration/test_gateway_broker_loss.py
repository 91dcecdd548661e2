"""A three-broker cluster loses a broker mid-stream: the gateway drains by itself.

Before, with mutual TLS, replication factor 3 and ``min.insync.replicas=2``, kill -9
of one broker froze the gateway's lag for minutes, while it reported itself healthy;
only a new gateway process cleared the backlog. Here the project's broker runner
starts three KRaft nodes (each broker and controller) with mutual TLS and ACLs,
provisioning makes every topic rf 3 with ``min.insync.replicas=2``, signals flow
through one gateway, and one broker is killed with SIGKILL while they flow. Every
signal must reach its recipient's delivery topic exactly once (counted on the
topic, read committed, so a duplicate would show), without restarting anything.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition

from sigex.broker import local
from sigex.broker.provision import provision
from sigex.clock import SystemClock
from sigex.exchange.topology import delivery_topic
from sigex.identity import init_federation, read_parties
from sigex.producers.publisher import PublishFailed
from sigex.roles import Role
from tests.conftest import free_port
from tests.integration.conftest import REPO, SecureExchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, start_kit
from tests.signal_records import frequent_mover

SIGNAL = "laa.frequent-mover"
PURPOSE = "LAA_SIGNAAL"
SENDER = "RVIG"
RECIPIENT = "GM0363"
SIGNALS = 600
BATCH = 20

Cluster = tuple[SecureExchange, tuple[local.BrokerSettings, ...]]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SecureExchange, tuple[local.BrokerSettings, ...]]]:
    state = tmp_path_factory.mktemp("three-brokers")
    init_federation(state, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
    federation = state / "federation"
    tls = local.TlsSettings(
        keystore_pem=federation / "broker" / "keystore.pem",
        truststore_pem=federation / "broker" / "truststore.pem",
    )
    nodes = local.cluster(
        state / "cluster", [(free_port(), free_port()) for _ in range(3)], tls=tls, heap="384m"
    )
    local.start_cluster(nodes)
    try:
        exchange = SecureExchange(",".join(node.bootstrap for node in nodes), state)
        admin = exchange.admin()
        try:
            provision(admin, exchange.topology())
        finally:
            admin.close()
        yield exchange, nodes
    finally:
        for node in nodes:
            local.stop(node)


def mover(number: int) -> dict[str, object]:
    signal_id = str(uuid.UUID(int=number + 1, version=4))
    return frequent_mover(RECIPIENT, fresh_bsn(), EXCHANGE_TIME, signal_id)


def delivered(exchange: SecureExchange) -> Counter[bytes]:
    """Every committed record on the recipient's delivery topic, by its traceparent."""
    consumer = KafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **exchange.connection(Role.ADMIN).options(),
    )
    try:
        topic = delivery_topic(SIGNAL, RECIPIENT)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        seen: Counter[bytes] = Counter()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            consumer.position(tp) < end for tp, end in ends.items()
        ):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    trace = dict(record.headers or ()).get("traceparent", b"")
                    seen[trace] += 1
        return seen
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def kit(cluster: Cluster) -> Iterator[ExchangeKit]:
    yield from start_kit(cluster[0])


def test_the_gateway_drains_after_a_broker_is_killed_without_a_restart(
    cluster: Cluster, kit: ExchangeKit
) -> None:
    exchange, nodes = cluster
    publisher = kit.publisher(SENDER)
    published = 0
    killed = False
    for start in range(0, SIGNALS, BATCH):
        records = [mover(n) for n in range(start, start + BATCH)]
        for attempt in range(3):
            try:
                result = publisher.publish(SIGNAL, PURPOSE, records)
                break
            except PublishFailed:
                # kafka-python's producer can expire a batch whose partition leader was the
                # killed broker, and then keep the stale leader (seen in CI): a partner
                # publishes again with a new producer; since the message ids derive from the
                # signal ids, the gateway takes each signal once
                if attempt == 2:
                    raise
                publisher = kit.renew_publisher(SENDER)
        published += len(result.published)
        if published >= SIGNALS // 3 and not killed:  # mid-stream: the gateway is busy
            os.kill(int(nodes[1].pid_path.read_text()), signal.SIGKILL)
            killed = True
    assert killed and published == SIGNALS

    # the gateway drains by itself: a generous bound, this is not a speed test
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and kit.runner.processed < SIGNALS:
        time.sleep(1)
    counts = delivered(exchange)
    assert sum(counts.values()) == SIGNALS, "lost or duplicated deliveries"
    assert len(counts) == SIGNALS and max(counts.values()) == 1
    assert kit.runner.ready
