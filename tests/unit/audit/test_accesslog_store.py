"""The store on SQLite and PostgreSQL: appending, idempotency, proofs, checkpoints, queries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.verify import verify_store
from sigex.clock import FixedClock
from sigex.exchange.access_record import EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.merkle import (
    leaf_hash,
    root_of_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

from .conftest import BACKENDS, PEOPLE, RecordFactory

pytestmark = pytest.mark.parametrize("store_location", BACKENDS, indirect=True)


def test_append_builds_the_rfc9162_tree(store: AccessLogStore, make_record: RecordFactory) -> None:
    records = [make_record() for _ in range(77)]
    result = store.append(records[:40])
    assert (result.appended, result.skipped, result.tree_size) == (40, 0, 40)
    store.append(records[40:])
    expected = [leaf_hash(r.to_bytes()) for r in records]
    assert store.size() == 77
    for size in (0, 1, 2, 15, 16, 17, 33, 64, 77):
        assert store.root(size) == root_of_leaf_hashes(expected[:size])


def test_replayed_events_add_nothing(store: AccessLogStore, make_record: RecordFactory) -> None:
    records = [make_record() for _ in range(20)]
    store.append(records)
    root = store.root()
    again = store.append([*records[5:10], *records[5:10]])
    assert (again.appended, again.skipped, again.tree_size) == (0, 10, 20)
    assert store.root() == root
    fresh = make_record()
    mixed = store.append([records[0], fresh, fresh])
    assert (mixed.appended, mixed.skipped, mixed.tree_size) == (1, 2, 21)


def test_a_different_record_under_a_known_key_is_a_conflict_not_a_skip(
    store: AccessLogStore, make_record: RecordFactory
) -> None:
    delivered = make_record(kind=EventKind.DELIVERED)
    store.append([delivered])
    root = store.root()
    # the same key, another event: refused and reported, never silently skipped
    pre_empting = replace(
        delivered,
        kind=EventKind.REFUSED_AT_PUBLISH,
        recipient=None,
        outcome=Outcome.DENY,
        reason_codes=("NO_AGREEMENT",),
        disclosed_fields=(),
    )
    result = store.append([pre_empting])
    assert (result.appended, result.skipped, result.conflicts) == (0, 0, (delivered.key,))
    assert store.root() == root
    # inside one batch too: the first stands, the second is a conflict
    fresh = make_record()
    other = replace(fresh, purpose="SUWI64_ARB")
    batch = store.append([fresh, other])
    assert (batch.appended, batch.skipped, batch.conflicts) == (1, 0, (fresh.key,))
    # a writer re-sending the same event later (after a crash) is a duplicate, not a conflict
    resent = replace(delivered, occurred_at=delivered.occurred_at + timedelta(seconds=30))
    again = store.append([resent])
    assert (again.appended, again.skipped, again.conflicts) == (0, 1, ())


def test_append_entries_takes_canonical_bytes(
    store: AccessLogStore, make_record: RecordFactory
) -> None:
    record = make_record()
    store.append_entries([record.to_bytes()])
    assert store.entry(0) == record.to_bytes()
    assert store.leaf_index_of(record.trace_id, record.operation_id) == 0


def test_a_reopened_store_continues_the_same_tree(
    store_location: str, make_record: RecordFactory
) -> None:
    records = [make_record() for _ in range(50)]
    with AccessLogStore.open(store_location) as first:
        first.append(records[:23])
    with AccessLogStore.open(store_location) as second:
        second.append(records[23:])
        assert second.root() == root_of_leaf_hashes([leaf_hash(r.to_bytes()) for r in records])


def test_inclusion_and_consistency_proofs_verify(
    store: AccessLogStore, make_record: RecordFactory
) -> None:
    records = [make_record() for _ in range(70)]
    store.append(records)
    for size in (1, 16, 37, 70):
        root = store.root(size)
        for index in (0, size // 2, size - 1):
            path = store.inclusion_proof(index, size)
            entry_hash = leaf_hash(records[index].to_bytes())
            assert verify_inclusion(entry_hash, index, size, path, root)
            assert not verify_inclusion(entry_hash, index, size, path, store.root(size - 1))
    for old in (0, 1, 16, 31, 64, 70):
        proof = store.consistency_proof(old, 70)
        assert verify_consistency(old, 70, store.root(old), store.root(), proof)


def test_checkpoints_are_signed_and_kept(
    store: AccessLogStore,
    make_record: RecordFactory,
    signing_key: Ed25519PrivateKey,
    clock: FixedClock,
) -> None:
    store.append([make_record() for _ in range(10)])
    checkpoint = store.checkpoint(signing_key, clock)
    assert checkpoint.tree_size == 10
    assert checkpoint.root == store.root()
    assert checkpoint.verify(signing_key.public_key())
    assert not checkpoint.verify(Ed25519PrivateKey.generate().public_key())
    assert store.checkpoints() == [checkpoint]
    report = verify_store(store, public_key=signing_key.public_key())
    assert report.ok, report.findings


def test_queries_filter_and_page(
    store: AccessLogStore, make_record: RecordFactory, pseudonymiser: SubjectPseudonymiser
) -> None:
    person = PEOPLE[0]
    records = [
        make_record(bsn=person),
        make_record(bsn=PEOPLE[1]),
        make_record(bsn=person, recipient="NLA", purpose="SUWI64_ARB"),
        make_record(
            bsn=person, kind=EventKind.REFUSED_FOR_RECIPIENT, recipient="BD", purpose="SUWI64_FISC"
        ),
        make_record(bsn=PEOPLE[2], sender="UWV"),
    ]
    store.append(records)
    subject = pseudonymiser.pseudonym(person)
    mine = store.query(RecordFilter(subject=subject))
    assert [s.leaf_index for s in mine.records] == [0, 2, 3]
    denied = store.query(RecordFilter(subject=subject, outcome=Outcome.DENY))
    assert [s.record.recipient for s in denied.records] == ["BD"]
    assert [s.leaf_index for s in store.query(RecordFilter(party="UWV")).records] == [4]
    assert [s.leaf_index for s in store.query(RecordFilter(party="NLA")).records] == [2]
    first = store.query(RecordFilter(sender="RVIG"), limit=2)
    assert [s.leaf_index for s in first.records] == [0, 1]
    second = store.query(RecordFilter(sender="RVIG"), limit=2, after=first.next_after)
    assert [s.leaf_index for s in second.records] == [2, 3]
    assert second.next_after is None
    window = RecordFilter(
        since=records[1].occurred_at, until=records[3].occurred_at, signal="laa.frequent-mover"
    )
    assert [s.leaf_index for s in store.query(window).records] == [1, 2]
    visible = store.query(RecordFilter(subject=subject), visible_to="NLA")
    assert [s.leaf_index for s in visible.records] == [2]
    later = RecordFilter(since=datetime(2030, 1, 1, tzinfo=UTC))
    assert store.query(later).records == ()
