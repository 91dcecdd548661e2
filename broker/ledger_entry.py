"""Records of the replay ledger (``sigex.gateway.ledger``): the messages the gateway admitted.

Pure data and its encoding: the gateway's core makes entries, the Kafka side
(:mod:`sigex.broker.replay_ledger`) writes and reads them.

Two record formats are read:

- **version 2** (written): up to :data:`ENTRIES_PER_RECORD` entries in one Kafka
  record, one canonical JSON object per line, each with its message id. The record's
  key is the first entry's message id: the topic is compacted, so a key must not be
  shared by two records that are both still needed, and a message id is admitted once
  in the replay window.
- **version 1** (written before packing): one entry per Kafka record, the message id
  as the key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sigex.canonical import canonical_json

#: entries packed into one Kafka record of the ledger (about 200 bytes each)
ENTRIES_PER_RECORD = 500


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One admitted message: its id, signed time, content digest and ingress record."""

    message_id: uuid.UUID
    signed_at: datetime
    digest: bytes
    source: str

    def key(self) -> bytes:
        return self.message_id.bytes

    def _fields(self) -> dict[str, Any]:
        return {
            "signed_at_ms": int(self.signed_at.timestamp() * 1000),
            "digest": self.digest.hex(),
            "source": self.source,
        }

    def value(self) -> bytes:
        """The entry alone, as a version 1 record (keyed by :meth:`key`)."""
        return canonical_json({"v": 1, **self._fields()})

    def line(self) -> bytes:
        """The entry as one line of a version 2 record."""
        return canonical_json({"v": 2, "message_id": self.message_id.hex, **self._fields()})

    @classmethod
    def from_fields(cls, message_id: uuid.UUID, fields: dict[str, Any]) -> LedgerEntry:
        return cls(
            message_id=message_id,
            signed_at=datetime.fromtimestamp(int(fields["signed_at_ms"]) / 1000, tz=UTC),
            digest=bytes.fromhex(str(fields["digest"])),
            source=str(fields["source"]),
        )


def pack_ledger_entries(entries: Sequence[LedgerEntry]) -> list[tuple[bytes, bytes]]:
    """(key, value) Kafka records holding ``entries``, version 2."""
    return [
        (chunk[0].key(), b"\n".join(entry.line() for entry in chunk))
        for start in range(0, len(entries), ENTRIES_PER_RECORD)
        if (chunk := entries[start : start + ENTRIES_PER_RECORD])
    ]


def parse_ledger_record(key: bytes | None, value: bytes | None) -> list[LedgerEntry]:
    """The entries of one ledger record, either version; raises ValueError (or KeyError,
    TypeError) when it is not one. A version 2 record is refused whole when any line is
    not an entry: a record the gateway wrote is never partly readable."""
    if value is None:
        raise ValueError("not a ledger record")
    documents = [json.loads(line) for line in value.split(b"\n")]
    if not all(isinstance(document, dict) for document in documents):
        raise ValueError("not a ledger record")
    if len(documents) == 1 and documents[0].get("v") == 1:
        if key is None or len(key) != 16:
            raise ValueError("a version 1 ledger record is keyed by its message id")
        return [LedgerEntry.from_fields(uuid.UUID(bytes=key), documents[0])]
    if any(document.get("v") != 2 for document in documents):
        raise ValueError("unknown ledger record version")
    entries = [
        LedgerEntry.from_fields(uuid.UUID(hex=str(document["message_id"])), document)
        for document in documents
    ]
    if key != entries[0].key():
        raise ValueError("a ledger record's key is its first entry's message id")
    return entries
