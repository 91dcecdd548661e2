"""FOR TESTS ONLY: a small in-memory federation with fixed-seed keys, contexts and sample fields.

Unit tests of the envelope (and of the layers above it) use these so that no
key is ever committed; the keys derive from public seeds and protect nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sigex.clock import FixedClock
from sigex.envelope import Opener, OutgoingRecord, SealContext, Sealer
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity.testing import directory_for, fixed_identity
from sigex.roles import Role

START = datetime(2027, 1, 1, tzinfo=UTC)
END = datetime(2028, 1, 1, tzinfo=UTC)
NOW = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
IN_TOPIC = "laa.frequent-mover.in"
OUT_TOPIC = "laa.frequent-mover.out.GM0363"
CODES = ("RVIG", Role.GATEWAY, "GM0363", "NLA")


def submission_context() -> SealContext:
    return SealContext(
        topic=IN_TOPIC,
        signal="laa.frequent-mover",
        schema_fingerprint="3f1d9a7c",
        sender="RVIG",
        recipient=Role.GATEWAY,
        purpose="LAA_SIGNAAL",
        agreement="AGR-LAA-0001",
    )


def delivery_context(recipient: str = "GM0363", topic: str = OUT_TOPIC) -> SealContext:
    return SealContext(
        topic=topic,
        signal="laa.frequent-mover",
        schema_fingerprint="3f1d9a7c",
        sender="RVIG",
        recipient=recipient,
        purpose="LAA_SIGNAAL",
        agreement="AGR-LAA-0001",
    )


def sample_fields(index: int = 0) -> dict[str, bytes]:
    return {
        "bsn": b"123456782",
        "address": f"Damrak {index + 1}, Amsterdam".encode(),
        "moves_last_year": bytes([5 + index]),
        "municipality": b"GM0363",
    }


def counter_random(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic bytes for tests (SHA-256 in counter mode); never for real keys."""
    state = {"counter": 0}

    def draw(count: int) -> bytes:
        out = b""
        while len(out) < count:
            state["counter"] += 1
            out += hashlib.sha256(seed + state["counter"].to_bytes(8, "big")).digest()
        return out[:count]

    return draw


@dataclass
class Federation:
    """TEST-ONLY parties RVIG, GATEWAY, GM0363 and NLA with one directory and a fixed clock."""

    identities: dict[str, PartyIdentity]
    directory: PartyDirectory
    clock: FixedClock

    def sealer(self, code: str) -> Sealer:
        return Sealer(identity=self.identities[code], directory=self.directory, clock=self.clock)

    def opener(self, code: str) -> Opener:
        return Opener(identity=self.identities[code], directory=self.directory, clock=self.clock)

    def submissions(self, count: int = 3) -> tuple[bytes, ...]:
        records = [OutgoingRecord.of(submission_context(), sample_fields(i)) for i in range(count)]
        return self.sealer("RVIG").seal(records)


def make_federation(seed: bytes = b"unit-test", now: datetime = NOW) -> Federation:
    """A fresh TEST-ONLY federation (keys from ``seed``, keys valid through 2027)."""
    identities = {code: fixed_identity(code, seed) for code in CODES}
    directory = directory_for(list(identities.values()), START, END)
    return Federation(identities, directory, FixedClock(now))
