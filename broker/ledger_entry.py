"""One record of the replay ledger (``sigex.gateway.ledger``): a message the gateway admitted.

Pure data and its encoding: the gateway's core makes entries, the Kafka side
(:mod:`sigex.broker.replay_ledger`) writes and reads them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sigex.canonical import canonical_json


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One admitted message: its id, signed time, content digest and ingress record."""

    message_id: uuid.UUID
    signed_at: datetime
    digest: bytes
    source: str

    def key(self) -> bytes:
        return self.message_id.bytes

    def value(self) -> bytes:
        return canonical_json(
            {
                "v": 1,
                "signed_at_ms": int(self.signed_at.timestamp() * 1000),
                "digest": self.digest.hex(),
                "source": self.source,
            }
        )

    @classmethod
    def parse(cls, key: bytes | None, value: bytes | None) -> LedgerEntry:
        """Read a ledger record; raises ValueError when it is not one."""
        if key is None or len(key) != 16 or value is None:
            raise ValueError("not a ledger record")
        fields = json.loads(value)
        if not isinstance(fields, dict) or fields.get("v") != 1:
            raise ValueError("unknown ledger record version")
        return cls(
            message_id=uuid.UUID(bytes=key),
            signed_at=datetime.fromtimestamp(int(fields["signed_at_ms"]) / 1000, tz=UTC),
            digest=bytes.fromhex(str(fields["digest"])),
            source=str(fields["source"]),
        )
