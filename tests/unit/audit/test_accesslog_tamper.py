"""Tamper tests: every change made directly in the database is found by verify, which says where.

Each case builds a fresh, checkpointed log, applies one random mutation with
plain SQL (as an insider with database access would), and runs
``verify_store`` with the checkpoints that were published. The mutations
range from clumsy (change one column) to careful (rewrite a row and every
hash above it so the store is self-consistent); the careful ones are caught
by the signed checkpoints.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.checkpoint import Checkpoint
from sigex.audit.store import STORED_LEVEL, AccessLogStore, record_row
from sigex.audit.verify import VerificationReport, verify_store
from sigex.clock import FixedClock
from sigex.exchange.access_record import INDEXED_FIELDS, AccessRecord
from sigex.merkle import TreeBuilder, leaf_hash

from .conftest import BACKENDS, RecordFactory

LOG_SIZE = 90
CHECKPOINT_SIZES = (20, 53, LOG_SIZE)
_RANGE = re.compile(r"records (\d+)\.\.(\d+)")
_ONE = re.compile(r"record (\d+)\b")

SQLITE_MUTATIONS = 160
POSTGRES_MUTATIONS = 30


@dataclass(frozen=True, slots=True)
class Mutation:
    name: str
    leaf_index: int | None  # the record the change is about; None for checkpoint changes


def _build(
    store: AccessLogStore, make_record: RecordFactory, key: Ed25519PrivateKey, clock: FixedClock
) -> tuple[list[AccessRecord], list[Checkpoint]]:
    records = [make_record() for _ in range(LOG_SIZE)]
    published: list[Checkpoint] = []
    done = 0
    for size in CHECKPOINT_SIZES:
        store.append(records[done:size])
        published.append(store.checkpoint(key, clock))
        clock.current = clock.current.replace(hour=clock.current.hour + 1)
        done = size
    return records, published


def _rewrite_nodes(store: AccessLogStore) -> None:
    """What a careful insider does after changing rows: recompute every stored subtree hash."""
    hashes = [row.leaf_hash for row in store.leaf_rows()]
    builder = TreeBuilder()
    nodes: list[tuple[int, int, bytes]] = []
    for value in hashes:
        nodes += [n for n in builder.add(value) if n[0] >= STORED_LEVEL]
    store.backend.execute("DELETE FROM merkle_nodes")
    store.backend.executemany(
        "INSERT INTO merkle_nodes (level, node_index, hash) VALUES (?, ?, ?)", nodes
    )


def _write_row(store: AccessLogStore, index: int, record: AccessRecord) -> None:
    entry = record.to_bytes()
    row = record_row(index, record, entry, leaf_hash(entry))
    store.backend.execute("DELETE FROM access_records WHERE leaf_index = ?", (index,))
    marks = ", ".join("?" for _ in row)
    store.backend.execute(f"INSERT INTO access_records VALUES ({marks})", row)


def _swap(store: AccessLogStore, first: int, second: int) -> None:
    rows = {
        int(r[0]): r
        for r in store.backend.query(
            "SELECT * FROM access_records WHERE leaf_index IN (?, ?)", (first, second)
        )
    }
    store.backend.execute("DELETE FROM access_records WHERE leaf_index IN (?, ?)", (first, second))
    marks = ", ".join("?" for _ in rows[first])
    for index, source in ((first, second), (second, first)):
        store.backend.execute(
            f"INSERT INTO access_records VALUES ({marks})", (index, *rows[source][1:])
        )


TEXT_COLUMNS = tuple(name for name in INDEXED_FIELDS if name != "agreement_version")


def _mutate(
    store: AccessLogStore,
    records: list[AccessRecord],
    make_record: RecordFactory,
    rng: random.Random,
) -> Mutation:
    index = rng.randrange(LOG_SIZE)
    choice = rng.randrange(13)
    backend = store.backend
    if choice == 0:
        column = rng.choice(TEXT_COLUMNS)
        backend.execute(
            f"UPDATE access_records SET {column} = ? WHERE leaf_index = ?",
            ("X" + str(rng.random()), index),
        )
        return Mutation(f"change column {column}", index)
    if choice == 1:
        backend.execute(
            "UPDATE access_records SET agreement_version = ? WHERE leaf_index = ?", (77, index)
        )
        return Mutation("change agreement_version", index)
    if choice == 2:
        forged = make_record(recipient="BD", trace_id=records[index].trace_id)
        backend.execute(
            "UPDATE access_records SET entry = ? WHERE leaf_index = ?", (forged.to_bytes(), index)
        )
        return Mutation("replace entry only", index)
    if choice == 3:
        backend.execute(
            "UPDATE access_records SET leaf_hash = ? WHERE leaf_index = ?", (bytes(32), index)
        )
        return Mutation("change leaf hash", index)
    if choice == 4:
        _write_row(store, index, make_record(recipient="NLA"))
        return Mutation("rewrite a whole row consistently", index)
    if choice == 5:
        _write_row(store, index, make_record(recipient="NLA"))
        _rewrite_nodes(store)
        return Mutation("rewrite a row and every subtree hash", index)
    if choice == 6:
        backend.execute("DELETE FROM access_records WHERE leaf_index = ?", (index,))
        return Mutation("delete a row", index)
    if choice == 7:
        backend.execute("DELETE FROM access_records WHERE leaf_index >= ?", (index,))
        _rewrite_nodes(store)
        return Mutation("truncate the log and its hashes", index)
    if choice == 8:
        shift = backend.query("SELECT leaf_index FROM access_records ORDER BY leaf_index DESC")
        for (position,) in shift:
            if position >= index:
                backend.execute(
                    "UPDATE access_records SET leaf_index = ? WHERE leaf_index = ?",
                    (position + 1, position),
                )
        _write_row(store, index, make_record())
        _rewrite_nodes(store)
        return Mutation("insert a row in the middle, renumber, rehash", index)
    if choice == 9:
        _write_row(store, LOG_SIZE, make_record())
        _rewrite_nodes(store)
        return Mutation("append a forged row", LOG_SIZE)
    if choice == 10:
        other = (index + rng.randrange(1, LOG_SIZE)) % LOG_SIZE
        _swap(store, index, other)
        return Mutation("swap two rows", min(index, other))
    if choice == 11:
        _swap(store, index, (index + 1) % LOG_SIZE)
        _rewrite_nodes(store)
        return Mutation("swap neighbours and rehash", min(index, (index + 1) % LOG_SIZE))
    stored = backend.query("SELECT tree_size FROM checkpoints")
    size = rng.choice(stored)[0]
    backend.execute("DELETE FROM checkpoints WHERE tree_size = ?", (size,))
    return Mutation("delete a checkpoint", None)


def _points_at(report: VerificationReport, mutation: Mutation) -> bool:
    if mutation.leaf_index is None:
        return any("checkpoint" in finding.where for finding in report.findings)
    for finding in report.findings:
        text = f"{finding.where}: {finding.problem}"
        for low, high in _RANGE.findall(text):
            if int(low) <= mutation.leaf_index <= int(high):
                return True
        if any(int(one) == mutation.leaf_index for one in _ONE.findall(finding.where)):
            return True
    return False


def _run_mutations(
    count: int,
    fresh_store: Callable[[int], AccessLogStore],
    make_record: RecordFactory,
    seed: int,
) -> None:
    rng = random.Random(seed)
    missed: list[str] = []
    for case in range(count):
        store = fresh_store(case)
        key = Ed25519PrivateKey.generate()
        records, published = _build(store, make_record, key, FixedClock())
        assert verify_store(store, public_key=key.public_key(), external_checkpoints=published).ok
        mutation = _mutate(store, records, make_record, rng)
        report = verify_store(store, public_key=key.public_key(), external_checkpoints=published)
        if report.ok or not _points_at(report, mutation):
            missed.append(f"case {case}: {mutation} -> {[str(f) for f in report.findings]}")
        store.close()
    assert not missed, "\n".join(missed)


def test_random_mutations_on_sqlite_are_all_detected(
    tmp_path: Path, make_record: RecordFactory
) -> None:
    def fresh(case: int) -> AccessLogStore:
        return AccessLogStore.open(str(tmp_path / f"case{case}.sqlite"))

    _run_mutations(SQLITE_MUTATIONS, fresh, make_record, seed=20270201)


@pytest.mark.postgres
@pytest.mark.parametrize("store_location", [BACKENDS[1]], indirect=True)
def test_random_mutations_on_postgres_are_all_detected(
    store_location: str, make_record: RecordFactory
) -> None:
    def fresh(case: int) -> AccessLogStore:
        store = AccessLogStore.open(store_location)
        for table in ("access_records", "merkle_nodes", "checkpoints"):
            store.backend.execute(f"DELETE FROM {table}")
        return store

    _run_mutations(POSTGRES_MUTATIONS, fresh, make_record, seed=1894)


def test_every_stored_checkpoint_deleted_is_caught_only_with_published_ones(
    tmp_path: Path, make_record: RecordFactory
) -> None:
    store = AccessLogStore.open(str(tmp_path / "a.sqlite"))
    key = Ed25519PrivateKey.generate()
    _, published = _build(store, make_record, key, FixedClock())
    store.backend.execute("DELETE FROM checkpoints WHERE tree_size = ?", (CHECKPOINT_SIZES[0],))
    assert verify_store(store, public_key=key.public_key()).ok  # the store alone cannot tell
    report = verify_store(store, public_key=key.public_key(), external_checkpoints=published)
    assert [f.problem for f in report.findings] == ["published but missing from the store"]


def test_a_database_rolled_back_behind_a_published_checkpoint_is_detected(
    tmp_path: Path, make_record: RecordFactory, signing_key: Ed25519PrivateKey
) -> None:
    live = tmp_path / "live.sqlite"
    backup = tmp_path / "backup.sqlite"
    clock = FixedClock()
    with AccessLogStore.open(str(live)) as store:
        store.append([make_record() for _ in range(40)])
        first = store.checkpoint(signing_key, clock)
        store.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(live, backup)
        store.append([make_record() for _ in range(25)])
        clock.current = clock.current.replace(hour=12)
        second = store.checkpoint(signing_key, clock)
    shutil.copyfile(backup, live)
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    with AccessLogStore.open(str(live)) as rolled_back:
        assert rolled_back.size() == 40
        alone = verify_store(rolled_back, public_key=signing_key.public_key())
        assert alone.ok  # a consistent old copy: only the published checkpoints show it
        report = verify_store(
            rolled_back, public_key=signing_key.public_key(), external_checkpoints=[first, second]
        )
    assert not report.ok
    assert any(
        "records 40..64 were removed or the database was rolled back" in f.problem
        for f in report.findings
    )


def test_a_checkpoint_signed_by_another_key_is_refused(
    tmp_path: Path, make_record: RecordFactory, signing_key: Ed25519PrivateKey
) -> None:
    with AccessLogStore.open(str(tmp_path / "a.sqlite")) as store:
        store.append([make_record() for _ in range(5)])
        store.checkpoint(Ed25519PrivateKey.generate(), FixedClock())
        report = verify_store(store, public_key=signing_key.public_key())
    assert any("signature does not verify" in f.problem for f in report.findings)
    assert any("not covered" in f.problem for f in report.findings)


def test_checkpoints_signed_before_a_key_rotation_still_verify_with_both_keys(
    tmp_path: Path, make_record: RecordFactory
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    clock = FixedClock()
    with AccessLogStore.open(str(tmp_path / "a.sqlite")) as store:
        store.append([make_record() for _ in range(5)])
        store.checkpoint(old, clock)
        store.append([make_record() for _ in range(5)])
        clock.current = clock.current.replace(hour=3)
        store.checkpoint(new, clock)
        both = verify_store(store, public_key=[old.public_key(), new.public_key()])
        only_new = verify_store(store, public_key=new.public_key())
    assert both.ok, both.findings
    assert [f.where for f in only_new.findings] == [
        "stored checkpoint at tree size 5 (issued 2027-02-01T00:00:00.000000Z)"
    ]
