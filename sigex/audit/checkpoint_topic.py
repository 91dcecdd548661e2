"""Publishing the access log's signed checkpoints to Kafka, and reading them back.

The audit service writes each checkpoint (canonical JSON, see
:mod:`sigex.audit.checkpoint`) to ``sigex.audit.checkpoints``, keyed by the
log's origin so they stay in order on one partition. Anyone may read the
topic and keep the checkpoints; ``sigex audit verify --bootstrap`` reads them
all back to catch a database that was rewritten or rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from sigex.audit.checkpoint import ORIGIN, Checkpoint
from sigex.audit.errors import CheckpointError
from sigex.exchange.topology import CHECKPOINT_TOPIC
from sigex.logs import get_logger
from sigex.transport import KafkaConnection

_log = get_logger(__name__)
_KEY = ORIGIN.encode("ascii")


class CheckpointPublisher:
    """A producer that writes checkpoints, acknowledged by all in-sync replicas."""

    def __init__(self, connection: KafkaConnection, topic: str = CHECKPOINT_TOPIC) -> None:
        self._topic = topic
        self._producer = KafkaProducer(
            **connection.options(), acks="all", enable_idempotence=True, linger_ms=0
        )

    def publish(self, checkpoint: Checkpoint) -> None:
        future = self._producer.send(self._topic, key=_KEY, value=checkpoint.to_bytes())
        self._producer.flush()
        future.get(timeout=30)

    def close(self) -> None:
        self._producer.close()


def publish_checkpoint(
    connection: KafkaConnection, checkpoint: Checkpoint, topic: str = CHECKPOINT_TOPIC
) -> None:
    publisher = CheckpointPublisher(connection, topic)
    try:
        publisher.publish(checkpoint)
    finally:
        publisher.close()


def read_published_checkpoints(
    connection: KafkaConnection, topic: str = CHECKPOINT_TOPIC, timeout_ms: int = 10000
) -> list[Checkpoint]:
    """Every checkpoint on the topic, oldest first; unreadable messages are logged and skipped."""
    consumer = KafkaConsumer(
        **connection.options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=timeout_ms,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        return list(_read_until(consumer, ends, time.monotonic() + timeout_ms / 1000))
    finally:
        consumer.close()


def last_published_checkpoint(
    connection: KafkaConnection, topic: str = CHECKPOINT_TOPIC, timeout_ms: int = 30000
) -> Checkpoint | None:
    """The checkpoint with the largest tree among the last few on the topic (None: none)."""
    consumer = KafkaConsumer(
        **connection.options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return None
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        for partition in assigned:
            consumer.seek(partition, max(0, ends[partition] - _LAST_FEW))
        found = list(_read_until(consumer, ends, time.monotonic() + timeout_ms / 1000))
    finally:
        consumer.close()
    return max(found, key=lambda c: (c.tree_size, c.issued_at), default=None)


#: how many records back from the end of the topic the last checkpoint is looked for
_LAST_FEW = 8


def _read_until(
    consumer: KafkaConsumer, ends: dict[TopicPartition, int], deadline: float
) -> Iterable[Checkpoint]:
    remaining = {tp: end for tp, end in ends.items() if end > 0}
    while remaining:
        if time.monotonic() > deadline:
            raise CheckpointError("published checkpoints: the topic could not be read in time")
        batch = consumer.poll(timeout_ms=2000)
        if not batch:
            if all(consumer.position(tp) >= end for tp, end in remaining.items()):
                return
            continue
        for partition, messages in batch.items():
            for message in messages:
                try:
                    yield Checkpoint.from_bytes(message.value)
                except CheckpointError:
                    _log.warning(
                        "checkpoint_unreadable",
                        topic=partition.topic,
                        partition=partition.partition,
                        offset=message.offset,
                    )
            if consumer.position(partition) >= remaining.get(partition, 0):
                remaining.pop(partition, None)


def fetch_published_checkpoints(connection: KafkaConnection) -> list[Checkpoint]:
    """The published checkpoints; a broker that cannot be read is a one-line CheckpointError."""
    try:
        return read_published_checkpoints(connection)
    except KafkaError as error:
        raise CheckpointError(
            f"published checkpoints: cannot read them from {connection.bootstrap} "
            f"({type(error).__name__}); check the broker, or verify --offline"
        ) from None
