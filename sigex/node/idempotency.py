"""Idempotency keys: a request sent again with the same key is answered, not done again.

Kept in SQLite beside the party's keys, so that a retry after the node
restarted is still recognised. A key belongs to the client that used it;
reusing it for a different request is refused, and a key whose request is
still being answered gets 409. A key left "in progress" by a node that died
is taken over by the retry: the request runs again, and since every record
is sealed under a message id derived from its ``signal_id``, the gateway
refuses any copy of what the first attempt already sent.

Only final answers are kept (2xx and 4xx other than 409 and 429); after a
5xx the same key may be tried again. Keys are kept for ``ttl_seconds``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigex.node.errors import IdempotencyKeyReused, IdempotentRequestInProgress, MalformedRequest

DEFAULT_TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    client TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    owner TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (client, key)
)
"""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: dict[str, Any]


def check_key(key: str) -> str:
    """An Idempotency-Key is 1 to 255 visible ASCII characters (an RFC 9110 token-ish string)."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise MalformedRequest(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            extra={"header": "Idempotency-Key"},
        )
    return key


def is_final(status: int) -> bool:
    return 200 <= status < 300 or (400 <= status < 500 and status not in (409, 429))


class IdempotencyStore:
    """Answers by (client, key), in one SQLite file; safe to use from several threads."""

    def __init__(
        self,
        path: Path | None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:",
            check_same_thread=False,
            isolation_level=None,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._ttl = ttl_seconds
        self._clock = clock
        #: this process: a row "in progress" under another owner was left by a node that died
        self._owner = uuid.uuid4().hex

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def begin(self, client: str, key: str, fingerprint: str) -> StoredAnswer | None:
        """The stored answer of this request, or None: then this caller answers it, and must
        call :meth:`finish` (or :meth:`abandon`)."""
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM idempotency WHERE created < ?", (now - self._ttl,))
                row = self._db.execute(
                    "SELECT fingerprint, owner, status, body FROM idempotency "
                    "WHERE client = ? AND key = ?",
                    (client, key),
                ).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO idempotency (client, key, fingerprint, owner, created) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (client, key, fingerprint, self._owner, now),
                    )
                    self._db.execute("COMMIT")
                    return None
                stored_fingerprint, owner, status, body = row
                if stored_fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was sent before with another body or signal; "
                        "use a new key for a new request",
                        extra={"header": "Idempotency-Key"},
                    )
                if status is not None:
                    self._db.execute("COMMIT")
                    return StoredAnswer(int(status), json.loads(body))
                if owner == self._owner:
                    raise IdempotentRequestInProgress(
                        "a request with this Idempotency-Key is being answered now; "
                        "ask again when it is done",
                        retry_after=1,
                    )
                # left in progress by a node that stopped: this request takes it over
                self._db.execute(
                    "UPDATE idempotency SET owner = ? WHERE client = ? AND key = ?",
                    (self._owner, client, key),
                )
                self._db.execute("COMMIT")
                return None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def finish(self, client: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Keep a final answer for the key; forget the key after an answer that is not final."""
        with self._lock:
            if is_final(status):
                self._db.execute(
                    "UPDATE idempotency SET status = ?, body = ? WHERE client = ? AND key = ?",
                    (status, json.dumps(body, sort_keys=True), client, key),
                )
            else:
                self._db.execute(
                    "DELETE FROM idempotency WHERE client = ? AND key = ?", (client, key)
                )
