"""Witness cosignatures of checkpoints (C2SP ``tlog-cosignature``, ``cosignature/v1``, Ed25519).

A witness that checked a checkpoint is consistent with everything it saw of the log
before signs::

    cosignature/v1
    time <POSIX seconds>
    <the checkpoint's note text: origin, size, root>

with its party's Ed25519 signing key (the key the party directory lists for it). The
signature line is ``— sigex.nl/witness/<PARTY> base64(key ID || u64 time || signature)``
with key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4]; it is appended to the
checkpoint's signed note. The message starts with ``cosignature/v1\\n``, which no
envelope signature of the same key starts with (those begin ``sigex/v1/``), so a
cosignature can never be taken for a signed envelope batch or the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sigex.audit import _keys, note
from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.checkpoint import Checkpoint
from sigex.audit.errors import CheckpointError, NoteError
from sigex.identity import PartyDirectory, UnknownParty
from sigex.identity import _primitives as primitives

WITNESS_NAME_PREFIX = "sigex.nl/witness/"
#: how far ahead of the verifier's clock a cosignature's time may be
FUTURE_SKEW = timedelta(minutes=5)
_HEADER = b"cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1


def witness_name(party: str) -> str:
    """The key name of ``party``'s witness in signature lines."""
    return f"{WITNESS_NAME_PREFIX}{party}"


def cosignature_key_id(party: str, public_key: bytes) -> bytes:
    return note.key_id(witness_name(party), note.COSIGNATURE_TYPE, public_key)


def cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    """What a witness signs: the header, the time line, then the checkpoint's note text."""
    if not checkpoint.is_note:
        raise CheckpointError("only a C2SP checkpoint can be cosigned")
    return _HEADER + b"time %d\n" % timestamp + checkpoint.body()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's cosignature of one checkpoint (which one is for the caller to keep)."""

    witness: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        note.check_key_name(witness_name(self.witness))
        if len(self.key_id) != 4:
            raise CheckpointError("a cosignature's key ID is 4 bytes")
        if isinstance(self.timestamp, bool) or not 0 <= self.timestamp <= _MAX_TIMESTAMP:
            raise CheckpointError("a cosignature's time is a POSIX time below 2^63")
        if len(self.signature) != 64:
            raise CheckpointError("a cosignature's signature is 64 bytes (Ed25519)")

    @property
    def signed_at(self) -> datetime:
        """The cosignature's time (CheckpointError beyond the years a datetime holds)."""
        try:
            return datetime.fromtimestamp(self.timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            raise CheckpointError("a cosignature's time is beyond the year 9999") from None

    def line(self) -> note.NoteSignature:
        stamped = self.timestamp.to_bytes(8, "big") + self.signature
        return note.NoteSignature(witness_name(self.witness), self.key_id, stamped)

    @classmethod
    def from_line(cls, line: note.NoteSignature) -> Cosignature | None:
        """The cosignature on a signature line, or None when the line is not a witness's."""
        if not line.name.startswith(WITNESS_NAME_PREFIX) or len(line.signature) != 72:
            return None
        party = line.name[len(WITNESS_NAME_PREFIX) :]
        timestamp = int.from_bytes(line.signature[:8], "big")
        try:
            return cls(party, line.key_id, timestamp, line.signature[8:])
        except (CheckpointError, NoteError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "key_id": self.key_id.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, values: object) -> Cosignature:
        if not isinstance(values, dict) or set(values) != {
            "witness",
            "key_id",
            "timestamp",
            "signature",
        }:
            raise CheckpointError("cosignature: the fields witness, key_id, timestamp, signature")
        try:
            return cls(
                str(values["witness"]),
                bytes.fromhex(values["key_id"]),
                values["timestamp"] if isinstance(values["timestamp"], int) else -1,
                bytes.fromhex(values["signature"]),
            )
        except (TypeError, ValueError, NoteError):
            raise CheckpointError("cosignature: malformed field") from None


def cosign(
    checkpoint: Checkpoint, party: str, signing_key: Ed25519PrivateKey, at: datetime
) -> Cosignature:
    """``party``'s witness cosignature of ``checkpoint`` at time ``at`` (whole seconds)."""
    timestamp = int(at.timestamp())
    public = primitives.raw_public_signing(signing_key)
    signature = _keys.sign(signing_key, cosigned_message(checkpoint, timestamp))
    return Cosignature(party, cosignature_key_id(party, public), timestamp, signature)


def verify_with_key(cosignature: Cosignature, checkpoint: Checkpoint, public_key: bytes) -> bool:
    """True when ``cosignature`` is by ``public_key`` over ``checkpoint`` at its time."""
    if cosignature.key_id != cosignature_key_id(cosignature.witness, public_key):
        return False
    return _keys.verify(
        primitives.verifying_key(public_key),
        cosignature.signature,
        cosigned_message(checkpoint, cosignature.timestamp),
    )


def verify_cosignature(
    cosignature: Cosignature, checkpoint: Checkpoint, directory: PartyDirectory, now: datetime
) -> bool:
    """True when a signing key the directory lists for the witness, valid at the
    cosignature's time and not revoked since, made this cosignature of ``checkpoint``."""
    try:
        keys = directory.party(cosignature.witness).signing_keys
        signed_at = cosignature.signed_at
    except (UnknownParty, CheckpointError):
        return False
    if signed_at > now + FUTURE_SKEW:  # a witness's clock may be off by a little, no more
        return False
    for record in keys:
        if cosignature_key_id(cosignature.witness, record.public_key) != cosignature.key_id:
            continue
        if record.verifies(signed_at, now) and verify_with_key(
            cosignature, checkpoint, record.public_key
        ):
            return True
    return False


def with_cosignatures(checkpoint: Checkpoint, cosignatures: list[Cosignature]) -> str:
    """The checkpoint's signed note with the log's signature and then each cosignature."""
    signed = checkpoint.signed_note()
    lines = signed.signatures + tuple(c.line() for c in cosignatures)
    return note.SignedNote(signed.text, lines).to_text()


def cosignatures_in(data: bytes) -> list[Cosignature]:
    """The witness cosignature lines of a signed note (unverified)."""
    found = (Cosignature.from_line(line) for line in note.parse_note(data).signatures)
    return [c for c in found if c is not None]
