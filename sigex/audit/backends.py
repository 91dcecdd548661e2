"""Two small database backends behind one interface: SQLite (stdlib, WAL) and PostgreSQL.

The store writes its SQL once with ``?`` placeholders; the PostgreSQL backend
turns them into ``%s``. Only the table definitions, the write lock and the way
a long read is streamed differ between the two.

Opened with ``create=False`` (verify, queries, reports), a backend creates
nothing: the database must exist and hold the access log's tables, and the
connection is read only.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg

from sigex.audit.errors import LogCorrupted, LogNotFound, StoreError

Row = tuple[Any, ...]
Params = Sequence[Any]

#: The tables an access log has; a database without them is not one.
TABLES = ("access_records", "merkle_nodes", "checkpoints")

_COLUMNS = """
    leaf_index {int} PRIMARY KEY,
    trace_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT,
    signal TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT,
    agreement_id TEXT,
    agreement_version {int},
    policy_version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    entry {blob} NOT NULL,
    leaf_hash {blob} NOT NULL,
    UNIQUE (trace_id, operation_id)
"""


def schema_statements(int_type: str, blob_type: str, table: str = "access_records") -> list[str]:
    """The tables and indexes of the access log (``table`` lets a benchmark make a twin)."""
    columns = _COLUMNS.format(int=int_type, blob=blob_type)
    statements = [f"CREATE TABLE IF NOT EXISTS {table} ({columns})"]
    indexed = ("subject", "sender", "recipient", "purpose", "agreement_id", "legal_basis", "signal")
    for column in indexed:
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {table}_{column} ON {table} ({column}, leaf_index)"
        )
    statements.append(
        f"CREATE INDEX IF NOT EXISTS {table}_occurred_at ON {table} (occurred_at, leaf_index)"
    )
    if table == "access_records":
        statements += [
            f"CREATE TABLE IF NOT EXISTS merkle_nodes (level {int_type} NOT NULL, "
            f"node_index {int_type} NOT NULL, hash {blob_type} NOT NULL, "
            "PRIMARY KEY (level, node_index))",
            f"CREATE TABLE IF NOT EXISTS checkpoints (tree_size {int_type} NOT NULL, "
            f"root {blob_type} NOT NULL, issued_at TEXT NOT NULL, key_id TEXT NOT NULL, "
            f"signature {blob_type} NOT NULL, origin TEXT, PRIMARY KEY (tree_size, issued_at))",
            f"CREATE TABLE IF NOT EXISTS cosignatures (tree_size {int_type} NOT NULL, "
            f"root {blob_type} NOT NULL, witness TEXT NOT NULL, key_id {blob_type} NOT NULL, "
            f"signed_at {int_type} NOT NULL, signature {blob_type} NOT NULL, "
            "PRIMARY KEY (tree_size, root, witness, signed_at))",
        ]
    return statements


#: Columns added to a table after databases with it were in use: (table, column, type).
#: Opening such a database for writing adds them; a reading open copes without them.
ADDED_COLUMNS = (("checkpoints", "origin", "TEXT"),)


def migrate(backend: Backend) -> None:
    """Add the columns an access log made by an earlier version lacks (NULL in old rows)."""
    for table, column, column_type in ADDED_COLUMNS:
        if column not in backend.columns(table):
            backend.execute(f"ALTER TABLE {table} ADD COLUMN {column} {column_type}")


class Backend(Protocol):
    """What the store needs from a database."""

    dialect: str
    location: str

    def execute(self, sql: str, params: Params = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    def query(self, sql: str, params: Params = ()) -> list[Row]: ...

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]: ...

    def write_transaction(self) -> Any: ...

    def snapshot(self) -> Any: ...

    def columns(self, table: str) -> set[str]: ...

    def close(self) -> None: ...


def _missing_tables(present: set[str], location: str) -> None:
    """Refuse a database that lacks the access log's tables (none: not a log; some: damaged)."""
    missing = [table for table in TABLES if table not in present]
    if len(missing) == len(TABLES):
        raise LogNotFound(f"{location} holds no access log (no tables; empty or truncated?)")
    if missing:
        raise LogCorrupted(f"{location}: the access log lacks table(s) {', '.join(missing)}")


class SqliteBackend:
    """SQLite in WAL mode; a write transaction is BEGIN IMMEDIATE (one writer at a time)."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.location = str(path)
        if not create and not path.is_file():
            raise LogNotFound(f"no access log at {path}: no such file")
        try:
            self._connection = sqlite3.connect(
                str(path) if create else f"{path.resolve().as_uri()}?mode=ro",
                uri=not create,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the SQLite access log at {path}: {error}") from None
        try:
            self._prepare(create)
        except StoreError:
            self._connection.close()
            raise
        except sqlite3.Error as error:
            self._connection.close()
            self._raise_if_damaged(error)
            raise StoreError(f"cannot open the SQLite access log at {path}: {error}") from None
        self._in_transaction = False

    def _prepare(self, create: bool) -> None:
        """Set the connection up; create the tables, or (read only) check they are there."""
        if create:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA busy_timeout=10000")
        self._connection.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache
        if create:
            # one writer creates and migrates (two services opening an old log at once)
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                for statement in schema_statements("INTEGER", "BLOB"):
                    self._connection.execute(statement)
                migrate(self)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
            return
        names = self._connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        _missing_tables({str(row[0]) for row in names}, f"the SQLite file {self.location}")

    def _raise_if_damaged(self, error: sqlite3.Error) -> None:
        """A damaged file (flipped bytes, not a database) as a one-line typed error."""
        name = getattr(error, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise LogCorrupted(f"the SQLite access log at {self.location} is damaged: {error}")

    def execute(self, sql: str, params: Params = ()) -> None:
        try:
            self._connection.execute(sql, tuple(params))
        except sqlite3.DatabaseError as error:
            self._raise_if_damaged(error)
            raise

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            self._connection.executemany(sql, rows)
        except sqlite3.DatabaseError as error:
            self._raise_if_damaged(error)
            raise

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(self._connection.execute(sql, tuple(params)).fetchall())
        except sqlite3.DatabaseError as error:
            self._raise_if_damaged(error)
            raise

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        try:
            cursor = self._connection.execute(sql, tuple(params))
            while True:
                rows = cursor.fetchmany(2000)
                if not rows:
                    return
                yield from rows
        except sqlite3.DatabaseError as error:
            self._raise_if_damaged(error)
            raise

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        if self._in_transaction:
            yield
            return
        self._connection.execute(begin)
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")
        finally:
            self._in_transaction = False

    def write_transaction(self) -> Any:
        return self._transaction("BEGIN IMMEDIATE")

    def snapshot(self) -> Any:
        return self._transaction("BEGIN")

    def columns(self, table: str) -> set[str]:
        return {str(row[1]) for row in self.query(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self._connection.close()


_ADVISORY_LOCK = 0x51631A  # the access log's writer lock in pg_advisory_xact_lock


class PostgresBackend:
    """PostgreSQL through psycopg 3; writers serialise on a transaction-scoped advisory lock."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, create: bool = True) -> None:
        self.location = dsn
        try:
            # UTF-8 whatever the database's encoding: on a SQL_ASCII database psycopg would
            # hand TEXT columns back as bytes, and every stored time would fail to parse
            self._connection = psycopg.connect(dsn, autocommit=True, client_encoding="UTF8")
            if create:
                with self._connection.transaction():
                    self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                    for statement in schema_statements("BIGINT", "BYTEA"):
                        self._connection.execute(statement.encode("utf-8"))
                    migrate(self)
            else:
                self._connection.execute("SET default_transaction_read_only = on")
                present = {
                    table
                    for table in TABLES
                    if self._connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
                    != (None,)
                }
                _missing_tables(present, "the PostgreSQL database")
        except StoreError:
            self._connection.close()
            raise
        except psycopg.Error as error:
            raise StoreError(
                f"cannot open the PostgreSQL access log: {type(error).__name__}"
            ) from None
        self._in_transaction = False
        self._cursors = itertools.count()

    @staticmethod
    def _sql(sql: str) -> bytes:
        return sql.replace("?", "%s").encode("utf-8")

    def execute(self, sql: str, params: Params = ()) -> None:
        self._connection.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._connection.execute(self._sql(sql), tuple(params)).fetchall())

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        with (
            self.snapshot(),
            self._connection.cursor(name=f"sigex_stream_{next(self._cursors)}") as cursor,
        ):
            cursor.itersize = 5000
            cursor.execute(self._sql(sql), tuple(params))
            yield from cursor

    @contextmanager
    def _transaction(self, lock: bool) -> Iterator[None]:
        if self._in_transaction:
            yield
            return
        self._in_transaction = True
        try:
            with self._connection.transaction():
                if lock:
                    self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                else:
                    self._connection.execute(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
                    )
                yield
        finally:
            self._in_transaction = False

    def write_transaction(self) -> Any:
        return self._transaction(lock=True)

    def snapshot(self) -> Any:
        return self._transaction(lock=False)

    def columns(self, table: str) -> set[str]:
        rows = self.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {str(row[0]) for row in rows}

    def close(self) -> None:
        self._connection.close()


def open_backend(location: str, *, create: bool = True) -> Backend:
    """A backend for a SQLite path or a ``postgresql://`` DSN.

    With ``create=False`` nothing is created: a missing file or table is :class:`LogNotFound`
    (or :class:`LogCorrupted` when only some tables are there) and the connection is read only.
    """
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(location, create=create)
    path = Path(location)
    if create and path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteBackend(path, create=create)
