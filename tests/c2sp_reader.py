"""An independent reader of C2SP signed notes, checkpoints and Ed25519 cosignatures.

Written from the specifications only (c2sp.org/signed-note, c2sp.org/tlog-checkpoint and
c2sp.org/tlog-cosignature, cosignature/v1), on purpose without importing anything from
``sigex`` and without looking at its own note and checkpoint parser: the tests use it to
check that what sigex writes is standard, which a reader sharing sigex's code (and so its
mistakes) could not show. It uses nothing but the standard library and ``cryptography``.

It is strict where the specifications say MUST (and in base64, which must be canonical
standard base64) and it refuses, with ``C2spError``, anything it cannot verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_EM_DASH = "\u2014"
_ED25519 = b"\x01"  # signed-note signature type of Ed25519 note signatures
_COSIGNATURE_V1 = b"\x04"  # signed-note signature type of timestamped Ed25519 cosignatures
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")


class C2spError(Exception):
    """The note is malformed, or does not carry the signature it must carry."""


@dataclass(frozen=True)
class ReadCheckpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    body: bytes  # the note text: the checkpoint lines, each ending in a newline


def _b64(text: str) -> bytes:
    """Decodes canonical standard base64 (RFC 4648 section 4), refusing any other spelling."""
    try:
        raw = base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise C2spError(f"bad base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:  # stray characters, padding, spare bits
        raise C2spError(f"bad base64: {text!r}")
    return raw


def _key_id(name: str, signature_type: bytes, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + signature_type + public_key).digest()[:4]


def _verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    try:  # a key that is not 32 bytes is a ValueError, a signature not 64 bytes fails
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise C2spError("a signature from a known key does not verify") from exc


def _split(note: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """The note text and its signature lines as (key name, key ID, signature)."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise C2spError("a signed note is UTF-8") from exc
    if any(ch < " " and ch != "\n" for ch in text):
        raise C2spError("a signed note holds no control character but newline")
    if not text.endswith("\n"):
        raise C2spError("a signed note ends in a newline")
    cut = text.rfind("\n\n")  # the text ends at the last empty line
    if cut < 0:
        raise C2spError("no blank line between the text and the signatures")
    body, lines = text[: cut + 1], text[cut + 2 : -1].split("\n")
    signatures: list[tuple[str, bytes, bytes]] = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _EM_DASH:
            raise C2spError(f"not a signature line: {line!r}")
        name, blob = parts[1], _b64(parts[2])
        if not name or "+" in name or any(ch.isspace() for ch in name):
            raise C2spError(f"bad key name: {name!r}")
        if len(blob) <= 4:
            raise C2spError("a signature is a 4-byte key ID and signature bytes")
        signatures.append((name, blob[:4], blob[4:]))
    return body.encode(), signatures


def open_note(note: bytes, name: str, public_key: bytes) -> bytes:
    """The text of a note that carries a valid Ed25519 note signature by (name, public_key)."""
    body, signatures = _split(note)
    key_id = _key_id(name, _ED25519, public_key)
    known = [sig for (n, i, sig) in signatures if (n, i) == (name, key_id)]
    if not known:
        raise C2spError(f"no signature by the known key {name}")
    for signature in known:
        _verify(public_key, signature, body)
    return body


def _checkpoint(body: bytes) -> ReadCheckpoint:
    lines = body.decode("utf-8")[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise C2spError("a checkpoint is at least three non-empty lines")
    origin, size, root_b64, *extensions = lines
    if not _TREE_SIZE.fullmatch(size):
        raise C2spError(f"bad tree size: {size!r}")
    root = _b64(root_b64)
    if len(root) != 32:
        raise C2spError("the root hash is 32 bytes")
    return ReadCheckpoint(origin, int(size), root, tuple(extensions), body)


def read_checkpoint(note: bytes, log_name: str, log_public_key: bytes) -> ReadCheckpoint:
    """The checkpoint of a note signed (Ed25519 note signature) by the log's key."""
    return _checkpoint(open_note(note, log_name, log_public_key))


def cosignature_time(note: bytes, witness_name: str, witness_public_key: bytes) -> int | None:
    """The timestamp of the witness's cosignature/v1 on this checkpoint, None if it has none.

    A line with the witness's name and key ID that is malformed or does not verify is an
    error; if the witness signed more than once, every line must verify and the latest
    timestamp is returned.
    """
    body, signatures = _split(note)
    _checkpoint(body)
    key_id = _key_id(witness_name, _COSIGNATURE_V1, witness_public_key)
    times: list[int] = []
    for name, line_id, blob in signatures:
        if (name, line_id) != (witness_name, key_id):
            continue
        if len(blob) != 8 + 64:
            raise C2spError("a cosignature is a u64 timestamp and a 64-byte signature")
        (timestamp,) = struct.unpack(">Q", blob[:8])
        if timestamp > 2**63 - 1:
            raise C2spError("a cosignature timestamp does not exceed 2^63 - 1")
        message = f"cosignature/v1\ntime {timestamp}\n".encode() + body
        _verify(witness_public_key, blob[8:], message)
        times.append(timestamp)
    return max(times) if times else None
