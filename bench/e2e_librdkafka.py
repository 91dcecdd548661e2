"""The end-to-end benchmark's reference row: the baseline pipeline on librdkafka.

The same three kinds of process as the kafka-python baseline (a producer, a
transactional consume-route-produce relay, one read_committed consumer per
municipality), the same records, topics, certificates, ACLs and settings, with
confluent-kafka (librdkafka, C) as the client instead of kafka-python. It shows
what a speed-minded team would get from the Kafka client alone; sigex itself
keeps kafka-python, the design's client.

The roles are called from ``bench/e2e_roles.py`` (``librdkafka-publisher``,
``librdkafka-relay``, ``librdkafka-consumer``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

#: the librdkafka relay's consumer group and transactional id (inside the gateway's ACL
#: prefixes, like the kafka-python relay's)
RELAY_GROUP = "sigex-gateway-bench-relay-rdk"
RELAY_TRANSACTIONAL = "sigex-gateway-bench-relay-rdk"
CONSUMER_NAME = "bench-e2e-rdk"
MAX_POLL_RECORDS = 500


def client_config(options: Mapping[str, object]) -> dict[str, object]:
    """librdkafka's settings for the TLS connection kafka-python's ``options`` describe."""
    config: dict[str, object] = {"bootstrap.servers": options["bootstrap_servers"]}
    if options.get("security_protocol") == "SSL":
        config |= {
            "security.protocol": "ssl",
            "ssl.ca.location": options["ssl_cafile"],
            "ssl.certificate.location": options["ssl_certfile"],
            "ssl.key.location": options["ssl_keyfile"],
            "ssl.endpoint.identification.algorithm": "https",
        }
    return config


def sender(
    options: Mapping[str, object], topic: str, schema: Any
) -> tuple[Callable[[Sequence[Mapping[str, object]]], None], Callable[[], None]]:
    """Send a batch of records, Avro-encoded whole, and wait until all are acknowledged."""
    producer = Producer(
        client_config(options) | {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error)

    def send(chunk: Sequence[Mapping[str, object]]) -> None:
        for record in chunk:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, dict(record), strict=True)
            producer.produce(
                topic,
                key=str(record["bsn"]).encode(),
                value=buffer.getvalue(),
                on_delivery=delivered,
            )
            producer.poll(0)
        if producer.flush(60) or failures:
            raise RuntimeError(f"librdkafka publish failed: {failures[:1]}")

    def close() -> None:
        producer.flush(10)

    return send, close


def poller(
    options: Mapping[str, object], topic: str, group: str, schema: Any
) -> tuple[Callable[[Callable[[str], None]], None], Callable[[], None]]:
    """Read a batch, decode each record, call the handler, commit (as the baseline does)."""
    consumer = Consumer(
        client_config(options)
        | {
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])

    def poll(handler: Callable[[str], None]) -> None:
        messages = consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=0.2)
        taken = 0
        for message in messages:
            if message.error() is not None:
                continue
            record = fastavro.schemaless_reader(io.BytesIO(message.value()), schema)
            handler(str(record["signal_id"]))  # type: ignore[index,call-overload]
            taken += 1
        if taken:
            # a rebalance refuses the commit: what was not committed comes again, counted once
            with contextlib.suppress(KafkaException):
                consumer.commit(asynchronous=False)

    return poll, consumer.close


def relay(
    options: Mapping[str, object],
    source: str,
    route: Callable[[bytes], str],
    instance: str,
    stopped: Callable[[], bool],
) -> None:
    """Consume, route and produce in one transaction with the consumed offsets."""
    config = client_config(options)
    consumer = Consumer(
        config
        | {
            "group.id": RELAY_GROUP,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            # a new group: start at the end, the warm-up comes after the group is stable
            "auto.offset.reset": "latest",
        }
    )
    producer = Producer(
        config
        | {
            "transactional.id": f"{RELAY_TRANSACTIONAL}-{instance}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "transaction.timeout.ms": 20_000,
        }
    )
    try:
        producer.init_transactions(30)
        consumer.subscribe([source])
        while not stopped():
            messages = [
                m
                for m in consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=0.5)
                if m.error() is None
            ]
            if not messages:
                continue
            try:
                producer.begin_transaction()
                for message in messages:
                    value = message.value()
                    producer.produce(
                        route(value), key=message.key(), value=value, headers=message.headers()
                    )
                producer.send_offsets_to_transaction(
                    consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
                )
                producer.commit_transaction(30)
            except KafkaException as failure:
                if not failure.args[0].txn_requires_abort():
                    raise
                producer.abort_transaction(30)
                first: dict[tuple[str, int], int] = {}
                for message in messages:
                    first.setdefault((message.topic(), message.partition()), message.offset())
                for (topic, partition), offset in first.items():
                    consumer.seek(TopicPartition(topic, partition, offset))
    finally:
        producer.flush(10)
        consumer.close()
