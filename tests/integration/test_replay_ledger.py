"""The replay ledger against a real broker: restored in full, caught up, refused when absent."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sigex.broker.ledger_entry import LedgerEntry, pack_ledger_entries
from sigex.broker.replay_ledger import LEDGER_WRITER_HEADER, LedgerUnavailable, ReplayLedger
from sigex.clock import FixedClock
from sigex.envelope import ReplayedMessage, ReplayGuard, ReusedMessageId
from sigex.transport import KafkaConnection

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def _entry(minutes_ago: int, digest: bytes = b"d" * 32) -> LedgerEntry:
    return LedgerEntry(uuid.uuid4(), NOW - timedelta(minutes=minutes_ago), digest, "t/0/1")


def _ledger_topic(bootstrap: str, partitions: int) -> str:
    """A fresh topic to stand in for the ledger."""
    topic = f"ledger-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    return topic


def test_a_ledger_topic_that_does_not_exist_stops_the_gateway(kafka_bootstrap: str) -> None:
    ledger = ReplayLedger(KafkaConnection(kafka_bootstrap), topic=f"absent-{uuid.uuid4().hex}")
    try:
        with pytest.raises(LedgerUnavailable, match="does not exist: run `sigex provision`"):
            ledger.restore(ReplayGuard(clock=FixedClock(NOW)))
    finally:
        ledger.close()


def test_restore_reads_every_committed_entry_and_catch_up_what_comes_later(
    kafka_bootstrap: str,
) -> None:
    topic = _ledger_topic(kafka_bootstrap, 3)
    transactional = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"ledger-test-{uuid.uuid4().hex}"
    )
    transactional.init_transactions()
    committed = [_entry(n) for n in range(1, 40)]
    aborted = _entry(1)
    transactional.begin_transaction()
    for entry in committed[:20]:  # version 1: one entry per record, as written before packing
        transactional.send(topic, key=entry.key(), value=entry.value())
    for key, value in pack_ledger_entries(committed[20:]):  # version 2: packed
        transactional.send(topic, key=key, value=value)
    transactional.commit_transaction()
    transactional.begin_transaction()
    transactional.send(topic, key=aborted.key(), value=aborted.value())
    transactional.abort_transaction()
    plain = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    plain.send(topic, key=b"not a message id", value=b"{}").get(timeout=30)  # unreadable: skipped

    guard = ReplayGuard(clock=FixedClock(NOW), window=timedelta(days=7))
    ledger = ReplayLedger(KafkaConnection(kafka_bootstrap), topic=topic)
    try:
        assert ledger.restore(guard) == len(committed)
        assert all(entry.message_id in guard for entry in committed)
        assert aborted.message_id not in guard  # its transaction never committed
        with pytest.raises(ReusedMessageId):
            guard.admit(committed[0].message_id, committed[0].signed_at, b"other content")
        with pytest.raises(ReplayedMessage):
            guard.admit(committed[1].message_id, committed[1].signed_at, committed[1].digest)

        later = _entry(0)
        transactional.begin_transaction()
        transactional.send(topic, key=later.key(), value=later.value())
        transactional.commit_transaction()
        # the commit's markers reach the partitions a moment after commit_transaction returns
        deadline = time.monotonic() + 30
        while later.message_id not in guard and time.monotonic() < deadline:
            assert ledger.catch_up(guard)
        assert later.message_id in guard
    finally:
        ledger.close()
        transactional.close()
        plain.close()


def test_catch_up_skips_only_the_records_of_the_writer_it_is_told_to(
    kafka_bootstrap: str,
) -> None:
    # a gateway need not read back its own entries; a new token (after a withdrawal) reads
    # them again, and restore at start reads everything
    topic = _ledger_topic(kafka_bootstrap, 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    ledger = ReplayLedger(KafkaConnection(kafka_bootstrap), topic=topic)
    mine, theirs = _entry(1), _entry(2)
    try:
        guard = ReplayGuard(clock=FixedClock(NOW), window=timedelta(days=7))
        assert ledger.restore(guard) == 0
        for entry, writer in ((mine, b"me"), (theirs, b"another")):
            ((key, value),) = pack_ledger_entries([entry])
            producer.send(topic, key=key, value=value, headers=[(LEDGER_WRITER_HEADER, writer)])
        producer.flush()
        deadline = time.monotonic() + 30
        while theirs.message_id not in guard and time.monotonic() < deadline:
            assert ledger.catch_up(guard, skip_writer=b"me")
        assert theirs.message_id in guard
        assert mine.message_id not in guard  # skipped: its writer holds it already

        fresh = ReplayGuard(clock=FixedClock(NOW), window=timedelta(days=7))
        again = ReplayLedger(KafkaConnection(kafka_bootstrap), topic=topic)
        try:
            assert again.restore(fresh) == 2
        finally:
            again.close()
        assert mine.message_id in fresh and theirs.message_id in fresh
    finally:
        ledger.close()
        producer.close()
