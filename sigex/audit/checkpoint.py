"""Signed checkpoints of the access log, in the C2SP ``tlog-checkpoint`` format.

A checkpoint is a signed note (:mod:`sigex.audit.note`) whose text is three lines::

    <origin>
    <tree size in decimal>
    <root, standard base64>

signed by the audit service's Ed25519 key under the key name ``<origin>`` (C2SP
``signed-note``, signature type 0x01). Standard transparency-log tooling reads it, and
the witnesses add their cosignatures (:mod:`sigex.audit.cosignature`) as more
signature lines on the same text.

Checkpoints signed before this format (origin ``sigex.audit.checkpoint/v1``) signed four
lines: that origin, the size, the root and the time of issue. They stay verifiable as
they are (``Checkpoint.is_note`` is False for them); nothing signs new ones. The time
of issue of a note checkpoint is kept beside it, unsigned: the witnesses' cosignatures
carry signed times.

A checkpoint travels and is exported as canonical JSON with the fields ``origin``,
``tree_size``, ``root`` (hex), ``issued_at``, ``key_id`` (hex), ``signature`` (hex)
and, for a note checkpoint, ``note`` (the signed note's text). On the checkpoint topic a
note checkpoint is the bare signed note. All Ed25519 work of the access log happens in
this module and :mod:`sigex.audit.cosignature`, through :mod:`sigex.audit._keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from sigex.audit import _keys, note
from sigex.audit._keys import Ed25519PrivateKey, Ed25519PublicKey
from sigex.audit.errors import CheckpointError, NoteError, RecordFormatError
from sigex.canonical import canonical_json
from sigex.clock import Clock
from sigex.exchange.access_record import format_time, parse_time
from sigex.identity import PartyEntry
from sigex.identity.keyfiles import check_private
from sigex.merkle import HASH_BYTES

#: the origin line of checkpoints signed before the C2SP format (still verifiable)
LEGACY_ORIGIN = "sigex.audit.checkpoint/v1"
#: the access log's origin when its witness policy names none (a development federation)
DEFAULT_ORIGIN = "sigex.nl/access-log/development"

#: One public key of the audit service, or several (its current and earlier keys).
TrustedKeys = Ed25519PublicKey | Sequence[Ed25519PublicKey]
_LEGACY_FIELDS = frozenset({"origin", "tree_size", "root", "issued_at", "key_id", "signature"})
_NOTE_FIELDS = _LEGACY_FIELDS | {"note"}


def key_id(public_key: Ed25519PublicKey) -> str:
    """The audit key's own ID: hex of the first 16 bytes of SHA-256 over the raw key."""
    raw = _keys.raw_public_bytes(public_key)
    return hashlib.sha256(raw).hexdigest()[:32]


def note_key_id(origin: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note key ID (hex, 4 bytes) of the log's key under the name ``origin``."""
    return note.key_id(origin, note.ED25519_TYPE, _keys.raw_public_bytes(public_key)).hex()


def check_origin(origin: str) -> None:
    """An origin is a key name too (no spaces, no '+'); the legacy origin is not a new one."""
    try:
        note.check_key_name(origin)
    except NoteError:
        raise CheckpointError("checkpoint origin: non-empty, without spaces or '+'") from None
    if origin == LEGACY_ORIGIN:
        raise CheckpointError(f"checkpoint origin: {LEGACY_ORIGIN} names the old format")


def checkpoint_body(origin: str, tree_size: int, root: bytes) -> bytes:
    """The note text of a checkpoint: origin, size and root, each line ending in a newline."""
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n".encode()


def signed_text(tree_size: int, root: bytes, issued_at: datetime) -> bytes:
    """What a legacy checkpoint's signature covers (four lines, the time included)."""
    return (
        f"{LEGACY_ORIGIN}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n"
        f"{format_time(issued_at)}\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A signed statement: the log ``origin`` had ``tree_size`` records with this ``root``."""

    tree_size: int
    root: bytes
    #: when the audit service signed it (signed only in a legacy checkpoint)
    issued_at: datetime
    #: hex: the signed-note key ID (8 digits), or a legacy checkpoint's 32-digit key ID
    key_id: str
    signature: bytes
    origin: str = LEGACY_ORIGIN

    def __post_init__(self) -> None:
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int):
            raise CheckpointError("checkpoint field 'tree_size': must be an integer")
        if self.tree_size < 0:
            raise CheckpointError("checkpoint field 'tree_size': must not be negative")
        if len(self.root) != HASH_BYTES:
            raise CheckpointError("checkpoint field 'root': must be 32 bytes")
        if len(self.signature) != 64:
            raise CheckpointError("checkpoint field 'signature': must be 64 bytes")
        if self.is_note:
            check_origin(self.origin)
            if len(self.key_id) != 8 or not _is_hex(self.key_id):
                raise CheckpointError("checkpoint field 'key_id': 8 hex digits for a note")

    @property
    def is_note(self) -> bool:
        """True for a C2SP checkpoint; False for one signed in the old four-line form."""
        return self.origin != LEGACY_ORIGIN

    def body(self) -> bytes:
        """The C2SP note text (origin, size, root), which the log and its witnesses sign."""
        return checkpoint_body(self.origin, self.tree_size, self.root)

    def signed_note(self) -> note.SignedNote:
        """The checkpoint as a signed note carrying the log's signature only."""
        if not self.is_note:
            raise CheckpointError("a legacy checkpoint has no C2SP form")
        line = note.NoteSignature(self.origin, bytes.fromhex(self.key_id), self.signature)
        return note.SignedNote(self.body().decode("utf-8"), (line,))

    def note_text(self) -> str:
        return self.signed_note().to_text()

    def same_tree(self, other: Checkpoint) -> bool:
        mine = (self.origin, self.tree_size, self.root)
        return mine == (other.origin, other.tree_size, other.root)

    def verify(self, trusted: TrustedKeys) -> bool:
        """True when the signature is by a trusted key over this checkpoint."""
        keys = (trusted,) if isinstance(trusted, Ed25519PublicKey) else tuple(trusted)
        if self.is_note:
            public_key = next((k for k in keys if note_key_id(self.origin, k) == self.key_id), None)
            message = self.body()
        else:
            public_key = next((k for k in keys if key_id(k) == self.key_id), None)
            message = signed_text(self.tree_size, self.root, self.issued_at)
        if public_key is None:
            return False
        return _keys.verify(public_key, self.signature, message)

    def to_dict(self) -> dict[str, Any]:
        values = {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "issued_at": format_time(self.issued_at),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }
        if self.is_note:
            values["note"] = self.note_text()
        return values

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Checkpoint:
        legacy = values.get("origin") == LEGACY_ORIGIN
        if frozenset(values) != (_LEGACY_FIELDS if legacy else _NOTE_FIELDS):
            raise CheckpointError("checkpoint: unexpected fields")
        try:
            checkpoint = cls(
                origin=str(values["origin"]),
                tree_size=values["tree_size"],
                root=bytes.fromhex(values["root"]),
                issued_at=parse_time(values["issued_at"], "issued_at"),
                key_id=str(values["key_id"]),
                signature=bytes.fromhex(values["signature"]),
            )
        except (TypeError, ValueError, RecordFormatError):
            raise CheckpointError("checkpoint: malformed field") from None
        if not legacy and values["note"] != checkpoint.note_text():
            raise CheckpointError("checkpoint: its note does not say what its fields say")
        return checkpoint

    @classmethod
    def from_note(cls, data: bytes, issued_at: datetime) -> Checkpoint:
        """A checkpoint from its signed note (extension lines are refused: this log signs
        none). The signature is the caller's to verify, with :meth:`verify`."""
        signed = note.parse_note(data)
        lines = signed.text.split("\n")[:-1]
        if len(lines) != 3:
            raise CheckpointError("checkpoint note: three lines (origin, size, root)")
        origin, size, root = lines
        if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise CheckpointError("checkpoint note: the size is a decimal without leading zeros")
        try:
            raw_root = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("checkpoint note: the root is not standard base64") from None
        # the log's line is found by its name (other lines, cosignatures, are the caller's)
        log_line = next(
            (s for s in signed.signatures if s.name == origin and len(s.signature) == 64), None
        )
        if log_line is None:
            raise CheckpointError("checkpoint note: no Ed25519 signature line by the log")
        checkpoint = cls(
            origin=origin,
            tree_size=int(size),
            root=raw_root,
            issued_at=issued_at,
            key_id=log_line.key_id.hex(),
            signature=log_line.signature,
        )
        if checkpoint.body().decode("utf-8") != signed.text:
            raise CheckpointError("checkpoint note: not in canonical form")
        return checkpoint

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            values = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CheckpointError("checkpoint: not UTF-8 JSON") from None
        if not isinstance(values, dict):
            raise CheckpointError("checkpoint: not a JSON object")
        return cls.from_dict(values)


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def sign_checkpoint(
    tree_size: int,
    root: bytes,
    signing_key: Ed25519PrivateKey,
    clock: Clock,
    origin: str = DEFAULT_ORIGIN,
) -> Checkpoint:
    """A C2SP checkpoint of this size and root, signed by the audit service's key."""
    check_origin(origin)
    return Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root=root,
        issued_at=clock.now(),
        key_id=note_key_id(origin, signing_key.public_key()),
        signature=_keys.sign(signing_key, checkpoint_body(origin, tree_size, root)),
    )


def sign_legacy_checkpoint(
    tree_size: int, root: bytes, signing_key: Ed25519PrivateKey, clock: Clock
) -> Checkpoint:
    """A checkpoint in the old four-line form: for tests that a migrated log still verifies."""
    issued_at = clock.now()
    return Checkpoint(
        tree_size=tree_size,
        root=root,
        issued_at=issued_at,
        key_id=key_id(signing_key.public_key()),
        signature=_keys.sign(signing_key, signed_text(tree_size, root, issued_at)),
    )


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 key (tests and development only; operations use the AUDIT party's key)."""
    return _keys.generate_signing_key()


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return _keys.public_key_pem(public_key)


def audit_keys(entry: PartyEntry | None) -> list[Ed25519PublicKey]:
    """The AUDIT party's signing keys its directory entry lists that are not revoked: the
    keys its checkpoints may be signed with (current and rotated)."""
    usable = [r for r in entry.signing_keys if r.revoked_at is None] if entry else []
    return [Ed25519PublicKey.from_public_bytes(r.public_key) for r in usable]


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM: a public key, or the key inside an X.509 certificate."""
    try:
        if b"CERTIFICATE" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = _keys.load_pem_public_key(data)
    except ValueError:
        raise CheckpointError("public key: not a PEM public key or certificate") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("public key: not an Ed25519 key")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from a PEM file that only its owner may read."""
    if Path(path).exists():
        check_private(Path(path))
    try:
        key = _keys.load_pem_private_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError):
        raise CheckpointError(f"signing key: cannot read a PEM private key at {path}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError("signing key: not an Ed25519 key")
    return key
