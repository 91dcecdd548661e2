"""The audit indexer and the checkpoint topic against a real Kafka broker.

Records go onto an audit topic and per-party receipts topics (names made
unique per test run, so other tests on the same broker do not interfere); the
indexer appends them to a SQLite log, checkpoints, publishes, and commits.
Replays add nothing, forged receipts are refused, and a database rolled back
behind a published checkpoint fails verification.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sigex.audit.checkpoint_topic import read_published_checkpoints
from sigex.audit.indexer import IndexerSettings, IndexerStats, run_indexer
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.verify import verify_store
from sigex.clock import FixedClock
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.audit_events import operation_id
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.transport import KafkaConnection

PERSON = "111222333"


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[tuple[str, str, str]]:
    run = uuid.uuid4().hex[:8]
    audit, receipts, checkpoints = f"t{run}.audit", f"t{run}.receipts.", f"t{run}.checkpoints"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics(
        [
            NewTopic(audit, 3, 1),
            NewTopic(f"{receipts}GM0363", 1, 1),
            NewTopic(checkpoints, 1, 1),
        ]
    )
    yield audit, receipts, checkpoints
    admin.delete_topics([audit, f"{receipts}GM0363", checkpoints])
    admin.close()


def _record(number: int, subject: str, **fields: object) -> AccessRecord:
    values: dict[str, object] = {
        "trace_id": f"{number:032x}",
        "operation_id": f"{number:016x}",
        "occurred_at": datetime(2027, 2, 1, tzinfo=UTC) + timedelta(seconds=number),
        "kind": EventKind.DELIVERED,
        "sender": "RVIG",
        "recipient": "GM0363",
        "signal": "laa.frequent-mover",
        "purpose": "LAA_SIGNAAL",
        "legal_basis": "NL.WBRP.LAA",
        "agreement_id": "AGR-LAA-GM0363",
        "agreement_version": 1,
        "policy_version": "2027.02.1",
        "outcome": Outcome.PERMIT,
        "reason_codes": (),
        "disclosed_fields": ("bsn", "address"),
        "message_id": f"m-{number}",
        "subject": subject,
    }
    values.update(fields)
    return AccessRecord(**values)  # type: ignore[arg-type]


def _index(
    store: AccessLogStore, key: Ed25519PrivateKey, settings: IndexerSettings
) -> IndexerStats:
    return run_indexer(store, key, FixedClock(), settings)


def test_indexer_consumes_checkpoints_publishes_and_detects_rollback(
    kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path
) -> None:
    audit, receipts, checkpoint_topic = topics
    subject = SubjectPseudonymiser(b"k" * 32).pseudonym(PERSON)
    connection = KafkaConnection(kafka_bootstrap)
    settings = IndexerSettings(
        connection=connection,
        group_id=f"sigex-audit-test-{uuid.uuid4().hex[:8]}",
        publish_every=10,
        idle_exit_seconds=4,
        audit_topic=audit,
        receipts_prefix=receipts,
        checkpoint_topic=checkpoint_topic,
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    delivered = [_record(n, subject) for n in range(1, 21)]
    for record in delivered:
        producer.send(audit, key=subject.encode(), value=record.to_bytes())
    for record in delivered[:5]:  # the gateway retried: the same events again
        producer.send(audit, key=subject.encode(), value=record.to_bytes())
    acknowledged = _record(
        100, subject, kind=EventKind.ACKNOWLEDGED, message_id="m-1", disclosed_fields=()
    )
    acknowledged = replace(
        acknowledged,
        operation_id=operation_id(
            "m-1", EventKind.ACKNOWLEDGED, "GM0363", subject, writer="GM0363"
        ),
    )
    forged = _record(101, subject, kind=EventKind.ACKNOWLEDGED, recipient="NLA")
    producer.send(f"{receipts}GM0363", value=acknowledged.to_bytes())
    producer.send(f"{receipts}GM0363", value=forged.to_bytes())  # GM0363 speaking for NLA
    producer.send(f"{receipts}GM0363", value=b"not a record")
    producer.flush()

    key = Ed25519PrivateKey.generate()
    db = tmp_path / "audit.sqlite"
    with AccessLogStore.open(str(db)) as store:
        stats = _index(store, key, settings)
        assert (stats.appended, stats.skipped, stats.rejected) == (21, 5, 2)
        assert stats.tree_size == 21
        assert stats.published >= 1
        mine = store.query(RecordFilter(subject=subject, kind=EventKind.ACKNOWLEDGED))
        assert [s.record.recipient for s in mine.records] == ["GM0363"]
        store.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db, tmp_path / "before.sqlite")

    published = read_published_checkpoints(connection, checkpoint_topic)
    assert published[-1].tree_size == 21
    with AccessLogStore.open(str(db)) as store:
        report = verify_store(store, public_key=key.public_key(), external_checkpoints=published)
        assert report.ok, report.findings

    for record in [_record(n, subject) for n in range(21, 26)]:
        producer.send(audit, key=subject.encode(), value=record.to_bytes())
    producer.flush()
    producer.close()
    with AccessLogStore.open(str(db)) as store:
        again = _index(store, key, settings)
    assert (again.appended, again.skipped, again.tree_size) == (5, 0, 26)

    published = read_published_checkpoints(connection, checkpoint_topic)
    assert published[-1].tree_size == 26
    shutil.copyfile(tmp_path / "before.sqlite", db)  # an insider restores yesterday's backup
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with AccessLogStore.open(str(db)) as store:
        assert verify_store(store, public_key=key.public_key()).ok  # alone, it looks fine
        report = verify_store(store, public_key=key.public_key(), external_checkpoints=published)
    assert not report.ok
    assert any("rolled back" in finding.problem for finding in report.findings)
