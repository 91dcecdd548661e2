"""Signed notes (C2SP ``signed-note``): a text and the signature lines that vouch for it.

A signed note is a UTF-8 text that ends in a newline, a blank line, then one or more
signature lines ``— <key name> <base64(key ID || signature)>``. The access log's
checkpoints (:mod:`sigex.audit.checkpoint`) are signed notes, and the witnesses'
cosignatures (:mod:`sigex.audit.cosignature`) are more signature lines on the same note.

This module parses and writes the format and computes key IDs; it knows nothing of what
the text means. Verifying a signature is the caller's, who knows the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from sigex.audit.errors import NoteError

#: ``— `` (U+2014 EM DASH, space) begins every signature line
SIGNATURE_PREFIX = "\u2014 "
#: signature type bytes (C2SP signed-note): Ed25519 note signatures, timestamped cosignatures
ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
#: a note with more signature lines than this is refused (the spec asks to accept 16)
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_NAME = re.compile(r"[^\s+]+")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key's name, its 4-byte ID, and what the key signed (n bytes)."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != 4:
            raise NoteError("a signature line's key ID is 4 bytes")

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note's text (with its final newline) and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8")

    def by(self, name: str, key_id: bytes) -> list[NoteSignature]:
        """The signatures under this key name and key ID (normally none or one)."""
        return [s for s in self.signatures if s.name == name and s.key_id == key_id]


def check_key_name(name: str) -> None:
    """A key name is non-empty, without Unicode spaces or ``+`` (and without control bytes)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or _CONTROL.search(name):
        raise NoteError("a key name must be non-empty, without spaces or '+'")


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    check_key_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(material).digest()[:4]


def parse_note(data: bytes) -> SignedNote:
    """Split a signed note into its text and signature lines, checking the format strictly."""
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("a signed note of more than 64 KiB")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a signed note must be UTF-8") from None
    if _CONTROL.search(whole):
        raise NoteError("a signed note holds no control characters other than newline")
    if not whole.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    lines = block.splitlines(keepends=True)
    if not lines:
        raise NoteError("a signed note has at least one signature line")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a signed note with more than {MAX_SIGNATURES} signatures")
    return SignedNote(text, tuple(_signature_line(line) for line in lines))


def _signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX) or not line.endswith("\n"):
        raise NoteError("a signature line begins with an em dash and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX) : -1].partition(" ")
    if not space or " " in encoded:
        raise NoteError("a signature line is a key name and one base64 value")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("a signature line's value is not standard base64") from None
    if len(raw) < 5 or base64.b64encode(raw).decode("ascii") != encoded:
        raise NoteError("a signature line's value is not a key ID and a signature")
    return NoteSignature(name, raw[:4], raw[4:])
