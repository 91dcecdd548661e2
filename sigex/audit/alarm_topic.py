"""Witness alarms on Kafka: published by the witness that raised one, read by every auditor.

A witness keeps its evidence in its own folder; it also publishes it on
``sigex.audit.witness-alarms`` (keyed by the witness), where every party may read it, so
that the evidence reaches auditors without passing through the audit service whose
log it accuses. ``sigex audit verify`` reads the topic whenever it reads the published
checkpoints, and checks each alarm as it checks ``--alarms`` files.
"""

from __future__ import annotations

import json
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from sigex.audit.errors import CheckpointError, WitnessError
from sigex.audit.witness import Alarm
from sigex.exchange.topology import WITNESS_ALARM_TOPIC
from sigex.logs import get_logger
from sigex.transport import KafkaConnection

_log = get_logger(__name__)


def publish_alarm(
    connection: KafkaConnection, alarm: Alarm, topic: str = WITNESS_ALARM_TOPIC
) -> None:
    """Publish the evidence, acknowledged by all in-sync replicas (WitnessError if not)."""
    try:
        producer = KafkaProducer(**connection.options(), acks="all", linger_ms=0)
    except KafkaError as error:
        raise WitnessError(f"witness alarm not published: {type(error).__name__}") from None
    try:
        value = json.dumps(alarm.to_dict(), sort_keys=True).encode("utf-8")
        producer.send(topic, key=alarm.witness.encode("ascii"), value=value).get(timeout=30)
    except KafkaError as error:
        raise WitnessError(f"witness alarm not published: {type(error).__name__}") from None
    finally:
        producer.close()


def read_published_alarms(
    connection: KafkaConnection, topic: str = WITNESS_ALARM_TOPIC, timeout_ms: int = 10000
) -> list[Alarm]:
    """Every alarm on the topic, oldest first; unreadable messages are logged and skipped."""
    consumer = KafkaConsumer(**connection.options(), enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        found: list[Alarm] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise CheckpointError("witness alarms: the topic could not be read in time")
            for messages in consumer.poll(timeout_ms=1000).values():
                for message in messages:
                    try:
                        found.append(Alarm.from_dict(json.loads(message.value or b"null")))
                    except (ValueError, TypeError, CheckpointError):
                        _log.warning("witness_alarm_unreadable", offset=message.offset)
        return found
    finally:
        consumer.close()


def fetch_published_alarms(connection: KafkaConnection) -> list[Alarm]:
    """The published alarms; a broker that cannot be read is a one-line CheckpointError."""
    try:
        return read_published_alarms(connection)
    except KafkaError as error:
        raise CheckpointError(
            f"witness alarms: cannot read them from {connection.bootstrap} "
            f"({type(error).__name__}); check the broker, or verify --offline"
        ) from None
