"""A received-signals inbox in SQLite: what a municipality or the NLA case intake keeps.

Each signal is stored once (the message id is the primary key, so a
redelivery changes nothing) with the legal basis, agreement and retention
it arrived under, and the date it must be deleted. The handler raises if the
row cannot be written, so the subscriber does not acknowledge a signal it
could not keep.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from sigex.consumers.subscriber import ReceivedSignal
from sigex.exchange.protocol import to_json_value
from sigex.identity.keyfiles import create_private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received_signal (
    message_id      TEXT PRIMARY KEY,
    signal          TEXT NOT NULL,
    sender          TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    legal_basis     TEXT NOT NULL,
    agreement       TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    delete_after    TEXT NOT NULL,
    fields          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'new'
);
CREATE INDEX IF NOT EXISTS received_signal_by_signal ON received_signal (signal, status);
"""


class Inbox:
    """A party's store of received signals."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # personal data: 0600 from the start (SQLite gives its journal files the same mode)
        create_private_file(path)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self.path = path

    def close(self) -> None:
        self._db.close()

    def store(self, received: ReceivedSignal) -> None:
        """Keep ``received`` (idempotent on the message id); the subscriber's handler."""
        delete_after = received.decided_at + timedelta(days=received.retention_days)
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO received_signal (message_id, signal, sender, purpose, "
                "legal_basis, agreement, received_at, delete_after, fields) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    received.message_id,
                    received.signal,
                    received.sender,
                    received.purpose,
                    received.legal_basis,
                    f"{received.agreement_id} v{received.agreement_version}",
                    received.decided_at.isoformat(),
                    delete_after.isoformat(),
                    json.dumps(to_json_value(dict(received.fields)), sort_keys=True),
                ),
            )

    def message_ids(self, limit: int = 100_000) -> list[str]:
        """The message ids of the last ``limit`` signals kept, for the subscriber's
        duplicate check after a restart (each row is committed before its offset)."""
        rows = self._db.execute(
            "SELECT message_id FROM received_signal ORDER BY rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [str(row[0]) for row in reversed(rows)]

    def count(self, signal: str | None = None) -> int:
        if signal is None:
            row = self._db.execute("SELECT count(*) FROM received_signal").fetchone()
        else:
            row = self._db.execute(
                "SELECT count(*) FROM received_signal WHERE signal = ?", (signal,)
            ).fetchone()
        return int(row[0])

    def counts(self) -> dict[tuple[str, str], int]:
        """How many signals per (signal, purpose)."""
        rows = self._db.execute(
            "SELECT signal, purpose, count(*) FROM received_signal GROUP BY signal, purpose"
        ).fetchall()
        return {(signal, purpose): int(n) for signal, purpose, n in rows}

    def open_items(self, signal: str) -> list[tuple[str, dict[str, object]]]:
        rows = self._db.execute(
            "SELECT message_id, fields FROM received_signal WHERE signal = ? AND status = 'new'",
            (signal,),
        ).fetchall()
        return [(message_id, json.loads(fields)) for message_id, fields in rows]

    def mark_done(self, message_id: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE received_signal SET status = 'done' WHERE message_id = ?", (message_id,)
            )

    def purge_expired(self, now_iso: str) -> int:
        """Delete what is past its retention (GDPR storage limitation); returns how many."""
        with self._db:
            cursor = self._db.execute(
                "DELETE FROM received_signal WHERE delete_after < ?", (now_iso,)
            )
        return int(cursor.rowcount)
