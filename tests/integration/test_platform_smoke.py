"""The stack works: Avro records through a real broker, exactly once, in order per partition."""

from __future__ import annotations

import io
import uuid
from collections import defaultdict

import fastavro
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

RECORDS = 10_000
PARTITIONS = 6
KEYS = 64

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "SmokeRecord",
        "namespace": "nl.sigex.test",
        "fields": [
            {"name": "sequence", "type": "long"},
            {"name": "key", "type": "int"},
            {"name": "key_sequence", "type": "long"},
            {"name": "note", "type": "string"},
        ],
    }
)


def encode(record: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record, strict=True)
    return buffer.getvalue()


def decode(payload: bytes) -> dict[str, object]:
    return fastavro.schemaless_reader(io.BytesIO(payload), SCHEMA)  # type: ignore[return-value]


def test_avro_records_arrive_exactly_once_in_order_per_partition(kafka_bootstrap: str) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        transactional_id=f"smoke-{topic}",
        linger_ms=5,
    )
    producer.init_transactions()
    per_key = [0] * KEYS
    batch = 1_000
    for start in range(0, RECORDS, batch):
        producer.begin_transaction()
        for sequence in range(start, start + batch):
            key = sequence % KEYS
            record = {"sequence": sequence, "key": key, "key_sequence": per_key[key], "note": "ok"}
            per_key[key] += 1
            producer.send(topic, key=str(key).encode(), value=encode(record))
        producer.commit_transaction()
    # An aborted transaction in the middle: a read_committed consumer never sees it.
    producer.begin_transaction()
    for key in range(KEYS):
        poison = {"sequence": -1, "key": key, "key_sequence": -1, "note": "aborted"}
        producer.send(topic, key=str(key).encode(), value=encode(poison))
    producer.flush()
    producer.abort_transaction()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=10_000,
    )
    seen: list[int] = []
    last_offset: dict[int, int] = {}
    last_key_sequence: dict[int, int] = defaultdict(lambda: -1)
    key_partition: dict[int, int] = {}
    for message in consumer:
        record = decode(message.value)
        assert record["note"] == "ok", "a record of an aborted transaction was read"
        key = int(record["key"])  # type: ignore[call-overload]
        assert message.offset > last_offset.get(message.partition, -1)
        last_offset[message.partition] = message.offset
        assert key_partition.setdefault(key, message.partition) == message.partition
        assert record["key_sequence"] == last_key_sequence[key] + 1, "out of order within a key"
        last_key_sequence[key] = int(record["key_sequence"])  # type: ignore[call-overload]
        seen.append(int(record["sequence"]))  # type: ignore[call-overload]
        if len(seen) == RECORDS:
            break
    consumer.close()

    assert len(seen) == RECORDS
    assert sorted(seen) == list(range(RECORDS)), "a record is missing or duplicated"
    assert len(last_offset) == PARTITIONS, "records were not spread over every partition"
