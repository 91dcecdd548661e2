"""``sigex audit verify`` on logs that are not there: a truncated file, a mistyped path, flipped
bytes, a BLOB rewritten as TEXT, an emptied log, a missing PostgreSQL table.

Each must end in a non-zero exit, the damage said in one line and no traceback, and verify must
never create a database. The command runs through ``sigex`` itself, as an operator runs it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from sigex.audit.errors import LogCorrupted, LogNotFound
from sigex.audit.store import AccessLogStore
from sigex.cli import main
from tests.witnessing import witness_latest

from .conftest import RecordFactory

RECORDS = 300  # several pages of records, and merkle nodes (one per 16 records and up)
_CLEAN_ENV = {"SIGEX_BOOTSTRAP": None, "SIGEX_AUDIT_DB": None, "SIGEX_AUDIT_DB_PASSWORD_FILE": None}


def _verify(state: Path, location: str | Path, *args: str) -> tuple[int, list[str]]:
    result = CliRunner(env=_CLEAN_ENV).invoke(
        main, ["audit", "verify", "--db", str(location), "--state-dir", str(state), *args]
    )
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"verify raised {result.exception!r}") from result.exception
    return result.exit_code, result.output.strip().splitlines()


def _one_line(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    assert lines[0].startswith("sigex: "), lines
    return lines[0]


def _checkpointed(state: Path, location: str, make_record: RecordFactory) -> int:
    with AccessLogStore.open(location) as store:
        store.append([make_record() for _ in range(RECORDS)])
    result = CliRunner(env=_CLEAN_ENV).invoke(
        main, ["audit", "checkpoint", "--db", location, "--state-dir", str(state)]
    )
    assert result.exit_code == 0, result.output
    witness_latest(state, location)
    return int(json.loads(result.stdout)["tree_size"])


@pytest.fixture
def sqlite_log(federation_state: Path, tmp_path: Path, make_record: RecordFactory) -> Path:
    """A checkpointed SQLite log that verifies, its WAL folded into the file."""
    db = tmp_path / "audit.sqlite"
    _checkpointed(federation_state, str(db), make_record)
    code, lines = _verify(federation_state, db)
    assert code == 0 and lines[-1].startswith(f"ok: {RECORDS} records"), lines
    connection = sqlite3.connect(db)  # the last connection to close folds the WAL in
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    assert not (tmp_path / "audit.sqlite-wal").exists()
    return db


def test_a_file_truncated_to_nothing_fails(federation_state: Path, sqlite_log: Path) -> None:
    sqlite_log.write_bytes(b"")
    code, lines = _verify(federation_state, sqlite_log)
    assert code != 0
    assert "holds no access log" in _one_line(lines)
    assert sqlite_log.stat().st_size == 0  # and no tables were made in it


@pytest.mark.parametrize("name", ["audit.sqlitr", "typo/audit.sqlite"])
def test_a_mistyped_path_fails_and_creates_nothing(
    federation_state: Path, tmp_path: Path, name: str
) -> None:
    wrong = tmp_path / name
    code, lines = _verify(federation_state, wrong)
    assert code != 0
    assert "no access log at" in _one_line(lines)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its folder


def _page_of(db: Path, table: str) -> tuple[int, int]:
    """(offset, size) of the root page of a table."""
    with sqlite3.connect(db) as connection:
        size = int(connection.execute("PRAGMA page_size").fetchone()[0])
        root = int(
            connection.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()[0]
        )
    return (root - 1) * size, size


def _flip(db: Path, offset: int, count: int) -> None:
    data = bytearray(db.read_bytes())
    for position in range(offset, offset + count):
        data[position] ^= 0xFF
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["file header", "records root page", "checkpoints page"])
def test_flipped_bytes_are_reported_in_one_line(
    federation_state: Path, sqlite_log: Path, where: str
) -> None:
    if where == "file header":
        _flip(sqlite_log, 0, 16)
    else:
        offset, size = _page_of(
            sqlite_log, "access_records" if where == "records root page" else "checkpoints"
        )
        _flip(sqlite_log, offset, size)
    code, lines = _verify(federation_state, sqlite_log)
    assert code != 0
    line = _one_line(lines)
    assert "damaged" in line or "holds no access log" in line or "lacks table" in line, line


def test_flipped_bytes_inside_entries_are_findings_or_damage(
    federation_state: Path, sqlite_log: Path
) -> None:
    # bytes in the middle of the file, inside record cells: either SQLite sees the damage or
    # the hashes do; never "ok" and never a traceback
    size = sqlite_log.stat().st_size
    for offset in range(size // 3, size - 4096, 4096):
        _flip(sqlite_log, offset + 2000, 8)
    code, lines = _verify(federation_state, sqlite_log)
    assert code != 0
    assert lines[-1].startswith(("FAILED", "sigex: ")), lines


@pytest.mark.parametrize(
    ("update", "said"),
    [
        (
            "UPDATE access_records SET entry = CAST(entry AS TEXT) WHERE leaf_index = 7",
            "damaged: record 7: entry is text, not bytes",
        ),
        (
            "UPDATE access_records SET leaf_hash = hex(leaf_hash) WHERE leaf_index = 9",
            "damaged: record 9: leaf_hash is text, not bytes",
        ),
        (
            "UPDATE checkpoints SET root = hex(root)",
            "damaged: checkpoint row 0: root is text, not bytes",
        ),
        (
            "UPDATE merkle_nodes SET hash = hex(hash) WHERE level = 4 AND node_index = 1",
            "damaged: merkle node row (4, 1) is text, not bytes",
        ),
    ],
    ids=["entry", "leaf-hash", "checkpoint-root", "node-hash"],
)
def test_a_blob_rewritten_as_text_is_reported_in_one_line(
    federation_state: Path, sqlite_log: Path, update: str, said: str
) -> None:
    with sqlite3.connect(sqlite_log) as connection:
        connection.execute(update)
    code, lines = _verify(federation_state, sqlite_log)
    assert code != 0
    assert said in _one_line(lines)


def test_an_emptied_log_fails_unless_expected_and_never_against_published_checkpoints(
    federation_state: Path, sqlite_log: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published.jsonl"
    with AccessLogStore.open(str(sqlite_log)) as store:
        published.write_text("\n".join(c.to_bytes().decode() for c in store.checkpoints()) + "\n")
    sqlite_log.unlink()
    AccessLogStore.open(str(sqlite_log)).close()  # a new, empty log in its place

    code, lines = _verify(federation_state, sqlite_log)
    assert code == 1
    assert "the log: has no records (emptied, replaced, or the wrong database?)" in lines[0]
    code, lines = _verify(
        federation_state, sqlite_log, "--allow-empty", "--checkpoints", str(published)
    )
    assert code == 1
    assert f"records 0..{RECORDS - 1} were removed or the database was rolled back" in lines[0]
    code, lines = _verify(federation_state, sqlite_log, "--allow-empty")
    assert code == 0 and lines == ["ok: 0 records, 0 signed checkpoints match"]


def test_the_typed_errors_from_the_store(tmp_path: Path) -> None:
    with pytest.raises(LogNotFound):
        AccessLogStore.open(str(tmp_path / "none.sqlite"), create=False)
    assert not (tmp_path / "none.sqlite").exists()
    half = tmp_path / "half.sqlite"
    with sqlite3.connect(half) as connection:
        connection.execute("CREATE TABLE access_records (leaf_index INTEGER PRIMARY KEY)")
    with pytest.raises(LogCorrupted, match=r"lacks table\(s\) merkle_nodes, checkpoints"):
        AccessLogStore.open(str(half), create=False)


def _tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.mark.postgres
@pytest.mark.parametrize("store_location", ["postgres"], indirect=True)
def test_postgres_without_the_tables_fails_and_creates_none(
    federation_state: Path, store_location: str, make_record: RecordFactory
) -> None:
    code, lines = _verify(federation_state, store_location)
    assert code != 0
    assert "the PostgreSQL database holds no access log" in _one_line(lines)
    assert _tables(store_location) == []

    _checkpointed(federation_state, store_location, make_record)
    with psycopg.connect(store_location, autocommit=True) as connection:
        connection.execute("DROP TABLE checkpoints")
    code, lines = _verify(federation_state, store_location)
    assert code != 0
    assert "lacks table(s) checkpoints" in _one_line(lines)
    assert "checkpoints" not in _tables(store_location)


def test_a_missing_log_fails_before_the_configured_broker_is_asked(
    federation_state: Path, tmp_path: Path
) -> None:
    # nothing listens on port 1: asking it would end in a broker error, not in this one
    typo = str(tmp_path / "typo.sqlite")
    result = CliRunner(env={**_CLEAN_ENV, "SIGEX_BOOTSTRAP": "127.0.0.1:1"}).invoke(
        main, ["audit", "verify", "--db", typo, "--state-dir", str(federation_state)]
    )
    assert result.exit_code != 0
    assert "no access log at" in _one_line(result.output.strip().splitlines())
