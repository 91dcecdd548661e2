"""Signed checkpoints of the access log: tree size, root and time, signed with Ed25519.

The signed text is four lines, each ending in a newline::

    sigex.audit.checkpoint/v1
    <tree size in decimal>
    <root, standard base64>
    <issued at, YYYY-MM-DDTHH:MM:SS.ffffffZ>

A checkpoint travels and is exported as canonical JSON with the fields
``origin``, ``tree_size``, ``root`` (hex), ``issued_at``, ``key_id`` (hex of the
first 16 bytes of SHA-256 over the raw public key) and ``signature`` (hex).
All Ed25519 work of the access log happens in this module, through
:mod:`sigex.audit._keys`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from sigex.audit import _keys
from sigex.audit._keys import Ed25519PrivateKey, Ed25519PublicKey
from sigex.audit.errors import CheckpointError, RecordFormatError
from sigex.canonical import canonical_json
from sigex.clock import Clock
from sigex.exchange.access_record import format_time, parse_time
from sigex.identity.keyfiles import check_private
from sigex.merkle import HASH_BYTES

ORIGIN = "sigex.audit.checkpoint/v1"

#: One public key of the audit service, or several (its current and earlier keys).
TrustedKeys = Ed25519PublicKey | Sequence[Ed25519PublicKey]
_FIELDS = frozenset({"origin", "tree_size", "root", "issued_at", "key_id", "signature"})


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = _keys.raw_public_bytes(public_key)
    return hashlib.sha256(raw).hexdigest()[:32]


def signed_text(tree_size: int, root: bytes, issued_at: datetime) -> bytes:
    return (
        f"{ORIGIN}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n"
        f"{format_time(issued_at)}\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A signed statement: the log had ``tree_size`` records with this ``root`` at this time."""

    tree_size: int
    root: bytes
    issued_at: datetime
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int):
            raise CheckpointError("checkpoint field 'tree_size': must be an integer")
        if self.tree_size < 0:
            raise CheckpointError("checkpoint field 'tree_size': must not be negative")
        if len(self.root) != HASH_BYTES:
            raise CheckpointError("checkpoint field 'root': must be 32 bytes")
        if len(self.signature) != 64:
            raise CheckpointError("checkpoint field 'signature': must be 64 bytes")

    def verify(self, trusted: TrustedKeys) -> bool:
        """True when the signature is by a trusted key over this size, root and time."""
        keys = (trusted,) if isinstance(trusted, Ed25519PublicKey) else tuple(trusted)
        public_key = next((k for k in keys if key_id(k) == self.key_id), None)
        if public_key is None:
            return False
        return _keys.verify(
            public_key, self.signature, signed_text(self.tree_size, self.root, self.issued_at)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": ORIGIN,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "issued_at": format_time(self.issued_at),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Checkpoint:
        if frozenset(values) != _FIELDS or values.get("origin") != ORIGIN:
            raise CheckpointError("checkpoint: unexpected fields or origin")
        try:
            return cls(
                tree_size=values["tree_size"],
                root=bytes.fromhex(values["root"]),
                issued_at=parse_time(values["issued_at"], "issued_at"),
                key_id=str(values["key_id"]),
                signature=bytes.fromhex(values["signature"]),
            )
        except (TypeError, ValueError, RecordFormatError):
            raise CheckpointError("checkpoint: malformed field") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            values = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CheckpointError("checkpoint: not UTF-8 JSON") from None
        if not isinstance(values, dict):
            raise CheckpointError("checkpoint: not a JSON object")
        return cls.from_dict(values)


def sign_checkpoint(
    tree_size: int, root: bytes, signing_key: Ed25519PrivateKey, clock: Clock
) -> Checkpoint:
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
