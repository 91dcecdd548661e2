"""The access log store: an append-only RFC 9162 Merkle log in SQLite or PostgreSQL.

Each record is one row of ``access_records``: its leaf index, the columns that
queries filter on, its canonical bytes (``entry``) and its leaf hash. Interior
nodes are kept in ``merkle_nodes`` only for perfect subtrees of 16 leaves or
more (levels 4 and up, about one row per eight records); smaller subtrees are
recomputed from at most 16 leaf hashes. So appending costs little more than a
plain insert, while the root, inclusion and consistency proofs of any tree
size need only a few dozen small reads. Signed checkpoints live in
``checkpoints``.

Appending is idempotent on (trace id, operation id) and serialised by a write
lock, so replaying a topic adds nothing and two indexers cannot interleave.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.backends import Backend, Row, open_backend
from sigex.audit.checkpoint import DEFAULT_ORIGIN, LEGACY_ORIGIN, Checkpoint, sign_checkpoint
from sigex.audit.cosignature import Cosignature
from sigex.audit.errors import LogCorrupted, ProofError, StoreError
from sigex.clock import Clock
from sigex.exchange.access_record import (
    INDEXED_FIELDS,
    AccessRecord,
    EventKind,
    Outcome,
    format_time,
    parse_time,
)
from sigex.merkle import (
    EMPTY_ROOT,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    is_power_of_two,
    leaf_hash,
    node_hash,
    right_edge,
    root_of_leaf_hashes,
    split_point,
)

#: Perfect subtrees at this level and above are stored; below it they are recomputed.
STORED_LEVEL = 4
_KEY_CHUNK = 400

RECORD_COLUMNS = ("leaf_index", *INDEXED_FIELDS, "entry", "leaf_hash")
INSERT_RECORD = (  # built from the constant column names above, no input
    f"INSERT INTO access_records ({', '.join(RECORD_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)


def record_row(index: int, record: AccessRecord, entry: bytes, hashed: bytes) -> tuple[Any, ...]:
    """The row of ``access_records`` for one record (also used by the benchmark's baseline)."""
    return (
        index,
        record.trace_id,
        record.operation_id,
        format_time(record.occurred_at),
        record.kind.value,
        record.sender,
        record.recipient,
        record.signal,
        record.purpose,
        record.legal_basis,
        record.agreement_id,
        record.agreement_version,
        record.policy_version,
        record.outcome.value,
        record.message_id,
        record.subject,
        entry,
        hashed,
    )


def _stored_type(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def stored_bytes(value: object, where: str) -> bytes:
    """A BLOB/BYTEA value as read back; anything else (a BLOB rewritten as TEXT) is damage."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise LogCorrupted(f"the access log is damaged: {where} is {_stored_type(value)}, not bytes")


def stored_int(value: object, where: str) -> int:
    """An INTEGER/BIGINT value as read back; anything else is damage."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise LogCorrupted(
        f"the access log is damaged: {where} is {_stored_type(value)}, not an integer"
    )


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did. ``skipped`` counts re-sent copies of records already in the log;
    ``conflicts`` are the keys (trace id, operation id) of records that were refused because
    the log holds a *different* record under the same key: an alarm, never a silent skip."""

    appended: int
    skipped: int
    tree_size: int
    conflicts: tuple[tuple[str, str], ...] = ()


def same_event(first: AccessRecord, second: AccessRecord) -> bool:
    """True when two records say the same thing; only the moment they were written may differ.

    A writer that re-sends after a crash (a receipt written again before its
    offset was committed) repeats the event at a later time: that is a
    duplicate, not a conflict.
    """
    return replace(first, occurred_at=second.occurred_at) == second


@dataclass(frozen=True, slots=True)
class StoredRecord:
    leaf_index: int
    record: AccessRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFilter:
    """What a query asks for; every given field must match (``party`` is sender or recipient)."""

    subject: str | None = None
    party: str | None = None
    sender: str | None = None
    recipient: str | None = None
    purpose: str | None = None
    agreement_id: str | None = None
    legal_basis: str | None = None
    signal: str | None = None
    outcome: Outcome | None = None
    kind: EventKind | None = None
    trace_id: str | None = None
    message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in (
            "subject",
            "sender",
            "recipient",
            "purpose",
            "agreement_id",
            "legal_basis",
            "signal",
            "trace_id",
            "message_id",
        ):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.party is not None:
            clauses.append("(sender = ? OR recipient = ?)")
            params += [self.party, self.party]
        if self.outcome is not None:
            clauses.append("outcome = ?")
            params.append(self.outcome.value)
        if self.kind is not None:
            clauses.append("kind = ?")
            params.append(self.kind.value)
        if self.since is not None:
            clauses.append("occurred_at >= ?")
            params.append(format_time(self.since))
        if self.until is not None:
            clauses.append("occurred_at < ?")
            params.append(format_time(self.until))
        return clauses, params


@dataclass(frozen=True, slots=True)
class Page:
    records: tuple[StoredRecord, ...]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class LeafRow:
    """One row as stored, for verification: nothing here is trusted yet."""

    leaf_index: int
    columns: tuple[Any, ...]
    entry: bytes
    leaf_hash: bytes


class AccessLogStore:
    """The access log in one database. Not thread-safe: use one store per thread."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._builder: TreeBuilder | None = None
        # a log made before C2SP checkpoints and witnesses, opened read only, lacks these
        self._origin_column = (
            "origin" if "origin" in backend.columns("checkpoints") else "NULL AS origin"
        )
        self._has_cosignatures = bool(backend.columns("cosignatures"))

    @classmethod
    def open(cls, location: str, *, create: bool = True) -> AccessLogStore:
        """Open (creating the tables if needed) a SQLite path or a ``postgresql://`` DSN.

        ``create=False`` opens an existing log read only and creates nothing: a missing file
        or table raises :class:`~sigex.audit.errors.LogNotFound` (verify, query, report).
        """
        return cls(open_backend(location, create=create))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> AccessLogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- appending -------------------------------------------------------------------------

    def size(self) -> int:
        rows = self.backend.query("SELECT MAX(leaf_index) FROM access_records")
        value = rows[0][0]
        return 0 if value is None else int(value) + 1

    def append(self, records: Sequence[AccessRecord]) -> AppendResult:
        """Append records not yet in the log; a (trace id, operation id) seen before is skipped."""
        entries = [(record, record.to_bytes()) for record in records]
        return self._append(entries)

    def append_entries(self, entries: Sequence[bytes]) -> AppendResult:
        """Append records given as their canonical bytes (as they come off the topic)."""
        return self._append([(AccessRecord.from_bytes(entry), entry) for entry in entries])

    def _append(self, entries: Sequence[tuple[AccessRecord, bytes]]) -> AppendResult:
        unique: dict[tuple[str, str], tuple[AccessRecord, bytes]] = {}
        conflicts: list[tuple[str, str]] = []
        for record, entry in entries:
            first = unique.setdefault(record.key, (record, entry))[0]
            if first is not record and not same_event(first, record):
                conflicts.append(record.key)
        try:
            with self.backend.write_transaction():
                size = self.size()
                builder = self._builder_at(size)
                existing = self._existing_records(list(unique))
                rows: list[tuple[Any, ...]] = []
                nodes: list[tuple[int, int, bytes]] = []
                for key, (record, entry) in unique.items():
                    if key in existing:
                        if not same_event(existing[key], record):
                            conflicts.append(key)
                        continue
                    hashed = leaf_hash(entry)
                    rows.append(record_row(builder.size, record, entry, hashed))
                    for node in builder.add(hashed):
                        if node[0] >= STORED_LEVEL:
                            nodes.append(node)
                if rows:
                    self.backend.executemany(INSERT_RECORD, rows)
                if nodes:
                    self.backend.executemany(
                        "INSERT INTO merkle_nodes (level, node_index, hash) VALUES (?, ?, ?)", nodes
                    )
        except BaseException:
            self._builder = None
            raise
        self._builder = builder
        return AppendResult(
            appended=len(rows),
            skipped=len(entries) - len(rows) - len(conflicts),
            tree_size=builder.size,
            conflicts=tuple(conflicts),
        )

    def _existing_records(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], AccessRecord]:
        """The records already in the log under any of ``keys``."""
        found: dict[tuple[str, str], AccessRecord] = {}
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start : start + _KEY_CHUNK]
            trace_ids = sorted({trace for trace, _ in chunk})
            marks = ", ".join("?" for _ in trace_ids)
            rows = self.backend.query(
                f"SELECT trace_id, operation_id, entry FROM access_records "  # noqa: S608
                f"WHERE trace_id IN ({marks})",
                trace_ids,
            )
            wanted = set(chunk)
            for row in rows:
                key = (str(row[0]), str(row[1]))
                if key in wanted:
                    found[key] = AccessRecord.from_bytes(bytes(row[2]))
        return found

    def _builder_at(self, size: int) -> TreeBuilder:
        if self._builder is not None and self._builder.size == size:
            return self._builder.copy()
        builder = TreeBuilder(size=size)
        for level, index in right_edge(size):
            builder.stack.append((level, self._perfect(level, index)))
        return builder

    # -- hashes and proofs -----------------------------------------------------------------

    def _leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self.backend.query(
            "SELECT leaf_index, leaf_hash FROM access_records "
            "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
            (start, end),
        )
        if len(rows) != end - start or any(
            int(row[0]) != start + offset for offset, row in enumerate(rows)
        ):
            raise StoreError(f"records {start}..{end - 1}: some leaves are missing")
        return [stored_bytes(row[1], f"record {row[0]}: leaf_hash") for row in rows]

    def _perfect(self, level: int, index: int) -> bytes:
        if level >= STORED_LEVEL:
            rows = self.backend.query(
                "SELECT hash FROM merkle_nodes WHERE level = ? AND node_index = ?", (level, index)
            )
            if not rows:
                raise StoreError(f"merkle node at level {level}, index {index}: missing")
            return stored_bytes(rows[0][0], f"merkle node at level {level}, index {index}")
        start = index << level
        return root_of_leaf_hashes(self._leaf_hashes(start, start + (1 << level)))

    def range_hash(self, start: int, end: int) -> bytes:
        """The root of leaves [start, end), from stored subtrees (start aligned as in RFC 9162)."""
        count = end - start
        if count <= 0:
            return EMPTY_ROOT
        if is_power_of_two(count) and start % count == 0:
            return self._perfect(count.bit_length() - 1, start // count)
        k = split_point(count)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        return self.range_hash(0, self.size() if size is None else size)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        if tree_size > self.size():
            raise ProofError("inclusion proof: the tree is smaller than asked")
        return inclusion_proof(leaf_index, tree_size, self.range_hash)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if new_size > self.size():
            raise ProofError("consistency proof: the tree is smaller than asked")
        return consistency_proof(old_size, new_size, self.range_hash)

    # -- reading records -------------------------------------------------------------------

    def entry(self, leaf_index: int) -> bytes:
        rows = self.backend.query(
            "SELECT entry FROM access_records WHERE leaf_index = ?", (leaf_index,)
        )
        if not rows:
            raise StoreError(f"record {leaf_index}: not in the log")
        return stored_bytes(rows[0][0], f"record {leaf_index}: entry")

    def leaf_index_of(self, trace_id: str, operation_id: str) -> int | None:
        rows = self.backend.query(
            "SELECT leaf_index FROM access_records WHERE trace_id = ? AND operation_id = ?",
            (trace_id, operation_id),
        )
        return int(rows[0][0]) if rows else None

    def query(
        self,
        record_filter: RecordFilter,
        *,
        limit: int = 100,
        after: int | None = None,
        visible_to: str | None = None,
    ) -> Page:
        """Records matching the filter in log order, ``limit`` at a time after leaf ``after``.

        ``visible_to`` restricts the answer to records that party sent or received.
        """
        if limit < 1:
            raise StoreError("query: limit must be at least 1")
        clauses, params = record_filter.where()
        if visible_to is not None:
            clauses.append("(sender = ? OR recipient = ?)")
            params += [visible_to, visible_to]
        if after is not None:
            clauses.append("leaf_index > ?")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.backend.query(
            f"SELECT leaf_index, entry FROM access_records {where} "  # noqa: S608
            "ORDER BY leaf_index LIMIT ?",
            [*params, limit + 1],
        )
        records = tuple(
            StoredRecord(int(row[0]), AccessRecord.from_bytes(bytes(row[1])))
            for row in rows[:limit]
        )
        next_after = records[-1].leaf_index if len(rows) > limit else None
        return Page(records, next_after)

    def query_all(
        self, record_filter: RecordFilter, *, visible_to: str | None = None
    ) -> Iterator[StoredRecord]:
        after: int | None = None
        while True:
            page = self.query(record_filter, limit=1000, after=after, visible_to=visible_to)
            yield from page.records
            if page.next_after is None:
                return
            after = page.next_after

    def leaf_rows(self) -> Iterator[LeafRow]:
        """Every row in leaf order, exactly as stored (for verification)."""
        select = ", ".join(RECORD_COLUMNS)
        for row in self.backend.stream(
            f"SELECT {select} FROM access_records ORDER BY leaf_index"  # noqa: S608
        ):
            yield _leaf_row(row)

    def raw_leaf_rows(self) -> Iterator[Row]:
        """Every row in leaf order as a plain tuple in ``RECORD_COLUMNS`` order (fast path)."""
        select = ", ".join(RECORD_COLUMNS)
        return self.backend.stream(
            f"SELECT {select} FROM access_records ORDER BY leaf_index"  # noqa: S608
        )

    def stored_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        for row in self.backend.stream(
            "SELECT level, node_index, hash FROM merkle_nodes ORDER BY level, node_index"
        ):
            where = f"merkle node row ({row[0]!r}, {row[1]!r})"
            yield stored_int(row[0], where), stored_int(row[1], where), stored_bytes(row[2], where)

    # -- checkpoints -----------------------------------------------------------------------

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.backend.write_transaction():
            exists = self.backend.query(
                "SELECT 1 FROM checkpoints WHERE tree_size = ? AND issued_at = ?",
                (checkpoint.tree_size, format_time(checkpoint.issued_at)),
            )
            if not exists:
                self.backend.execute(
                    "INSERT INTO checkpoints "
                    "(tree_size, root, issued_at, key_id, signature, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        checkpoint.tree_size,
                        checkpoint.root,
                        format_time(checkpoint.issued_at),
                        checkpoint.key_id,
                        checkpoint.signature,
                        checkpoint.origin if checkpoint.is_note else None,
                    ),
                )

    def _select_checkpoints(self, rest: str) -> str:
        return (
            "SELECT tree_size, root, issued_at, key_id, signature, "  # noqa: S608 - fixed parts
            f"{self._origin_column} FROM checkpoints {rest}"
        )

    def checkpoints(self) -> list[Checkpoint]:
        return self._checkpoint_rows(self._select_checkpoints("ORDER BY tree_size, issued_at"))

    def checkpoint_at(self, tree_size: int) -> Checkpoint | None:
        """The last checkpoint issued at exactly ``tree_size`` records, if any."""
        found = self._checkpoint_rows(
            self._select_checkpoints("WHERE tree_size = ? ORDER BY issued_at DESC LIMIT 1"),
            (tree_size,),
        )
        return found[0] if found else None

    def _checkpoint_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Checkpoint]:
        rows = self.backend.query(sql, params)
        return [
            Checkpoint(
                tree_size=stored_int(row[0], f"checkpoint row {number}: tree_size"),
                root=stored_bytes(row[1], f"checkpoint row {number}: root"),
                issued_at=parse_time(str(row[2]), "issued_at"),
                key_id=str(row[3]),
                signature=stored_bytes(row[4], f"checkpoint row {number}: signature"),
                origin=LEGACY_ORIGIN if row[5] is None else str(row[5]),
            )
            for number, row in enumerate(rows)
        ]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The checkpoint of the largest tree (the last issued of those), read by index."""
        found = self._checkpoint_rows(
            self._select_checkpoints("ORDER BY tree_size DESC, issued_at DESC LIMIT 1")
        )
        return found[0] if found else None

    def checkpoint_count(self) -> int:
        return int(self.backend.query("SELECT COUNT(*) FROM checkpoints")[0][0])

    def recent_checkpoints(self, limit: int) -> list[Checkpoint]:
        """The ``limit`` checkpoints of the largest trees, oldest first."""
        found = self._checkpoint_rows(
            self._select_checkpoints("ORDER BY tree_size DESC, issued_at DESC LIMIT ?"),
            (limit,),
        )
        return found[::-1]

    def checkpoint(
        self, signing_key: Ed25519PrivateKey, clock: Clock, origin: str | None = None
    ) -> Checkpoint:
        """Sign the current size and root with the audit service's key, and keep it.

        ``origin`` names the log (its witness policy's); without it the log keeps the
        origin of its last C2SP checkpoint, or takes the development default.
        """
        with self.backend.write_transaction():
            if origin is None:
                latest = self.latest_checkpoint()
                origin = latest.origin if latest and latest.is_note else DEFAULT_ORIGIN
            size = self.size()
            # the right edge this store keeps from its own appends (read once when it opened)
            root = self._builder_at(size).root()
            signed = sign_checkpoint(size, root, signing_key, clock, origin)
            self.add_checkpoint(signed)
        return signed

    # -- witness cosignatures --------------------------------------------------------------

    def add_cosignature(self, checkpoint: Checkpoint, cosignature: Cosignature) -> bool:
        """Keep a cosignature of ``checkpoint`` (the caller verified it) in place of the
        witness's older one; False if one as new or newer is on record."""
        row = (
            checkpoint.tree_size,
            checkpoint.root,
            cosignature.witness,
            cosignature.key_id,
            cosignature.timestamp,
            cosignature.signature,
        )
        with self.backend.write_transaction():
            # one per witness and checkpoint, the newest: a witness co-signs again each round
            if self.backend.query(
                "SELECT 1 FROM cosignatures WHERE tree_size = ? AND root = ? AND witness = ? "
                "AND signed_at >= ?",
                row[:3] + row[4:5],
            ):
                return False
            self.backend.execute(
                "DELETE FROM cosignatures WHERE tree_size = ? AND root = ? AND witness = ?",
                row[:3],
            )
            self.backend.execute(
                "INSERT INTO cosignatures (tree_size, root, witness, key_id, signed_at, "
                "signature) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        return True

    def cosignatures(self, checkpoint: Checkpoint) -> list[Cosignature]:
        """The cosignatures on record for ``checkpoint``'s tree (unverified), oldest first."""
        if not self._has_cosignatures or not checkpoint.is_note:
            return []
        rows = self.backend.query(
            "SELECT witness, key_id, signed_at, signature FROM cosignatures "
            "WHERE tree_size = ? AND root = ? ORDER BY signed_at, witness",
            (checkpoint.tree_size, checkpoint.root),
        )
        return [
            Cosignature(
                str(row[0]),
                stored_bytes(row[1], "cosignature key_id"),
                stored_int(row[2], "cosignature signed_at"),
                stored_bytes(row[3], "cosignature signature"),
            )
            for row in rows
        ]


def _leaf_row(row: Row) -> LeafRow:
    return LeafRow(
        leaf_index=int(row[0]),
        columns=tuple(row[1:-2]),
        entry=stored_bytes(row[-2], f"record {row[0]}: entry"),
        leaf_hash=stored_bytes(row[-1], f"record {row[0]}: leaf_hash"),
    )
