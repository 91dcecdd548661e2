"""Publishing the access log's signed checkpoints to Kafka, and reading them back.

The audit service writes each checkpoint to ``sigex.audit.checkpoints``, keyed by the
log's origin so they stay in order on one partition: a C2SP checkpoint as its bare
signed note (what transparency-log tooling reads), with the time the audit service
signed it in the header ``sigex-issued-at``; checkpoints written before that format are
canonical JSON (see :mod:`sigex.audit.checkpoint`), and both are read back. Anyone may read the
topic and keep the checkpoints; ``sigex audit verify --bootstrap`` reads them
all back to catch a database that was rewritten or rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from sigex.audit.checkpoint import Checkpoint
from sigex.audit.errors import CheckpointError, RecordFormatError
from sigex.exchange.access_record import format_time, parse_time
from sigex.exchange.protocol import header_value
from sigex.exchange.topology import CHECKPOINT_TOPIC
from sigex.logs import get_logger
from sigex.transport import KafkaConnection

_log = get_logger(__name__)
ISSUED_AT_HEADER = "sigex-issued-at"


def checkpoint_record(checkpoint: Checkpoint) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a checkpoint on the topic."""
    key = checkpoint.origin.encode("utf-8")
    if not checkpoint.is_note:
        return key, checkpoint.to_bytes(), []
    issued = format_time(checkpoint.issued_at).encode("ascii")
    return key, checkpoint.note_text().encode("utf-8"), [(ISSUED_AT_HEADER, issued)]


def parse_checkpoint_record(value: bytes, headers: list[tuple[str, bytes]]) -> Checkpoint:
    """A checkpoint read from the topic, in either form (CheckpointError if neither)."""
    if value.startswith(b"{"):
        return Checkpoint.from_bytes(value)
    issued = header_value(headers, ISSUED_AT_HEADER)
    try:
        issued_at = parse_time(issued.decode("ascii") if issued else "", "issued_at")
    except (UnicodeDecodeError, RecordFormatError):
        raise CheckpointError("checkpoint record: no readable sigex-issued-at header") from None
    return Checkpoint.from_note(value, issued_at)


class CheckpointPublisher:
    """A producer that writes checkpoints, acknowledged by all in-sync replicas."""

    def __init__(self, connection: KafkaConnection, topic: str = CHECKPOINT_TOPIC) -> None:
        self._topic = topic
        self._producer = KafkaProducer(
            **connection.options(), acks="all", enable_idempotence=True, linger_ms=0
        )

    def publish(self, checkpoint: Checkpoint) -> None:
        key, value, headers = checkpoint_record(checkpoint)
        future = self._producer.send(self._topic, key=key, value=value, headers=headers)
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
                    yield parse_checkpoint_record(message.value, list(message.headers or []))
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
