"""Envelope version 1 on the wire: encodings, domain-separated hashes and the Merkle tree.

``docs/envelope.md`` is the specification; this module follows it section by
section. Everything here is pure computation on bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

MAGIC = b"SGX"
VERSION_1 = 1
KIND_SUBMISSION = 1
KIND_DELIVERY = 2

SALT_LENGTH = 16
ID_LENGTH = 16
NONCE_LENGTH = 12
KEY_ID_LENGTH = 8
WRAPPED_KEY_LENGTH = 80  # HPKE enc (32) + AES-256-GCM of a 32-byte key (32) + tag (16)
SIGNATURE_LENGTH = 64
HASH_LENGTH = 32
MAX_PATH = 32
MAX_BATCH = 65536

FIELD_TAG = b"sigex/v1/field\x00"
MESSAGE_TAG = b"sigex/v1/message\x00"
DECISION_TAG = b"sigex/v1/decision\x00"
ROOT_TAG = b"sigex/v1/root\x00"
WRAP_TAG = b"sigex/v1/data-key\x00"
TREE_MESSAGES = 1
TREE_DECISIONS = 2

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PERIOD = struct.Struct(">IQ")
_PROOF_HEAD = struct.Struct(">II")

u16 = _U16.pack
u32 = _U32.pack
u64 = _U64.pack


class WireError(Exception):
    """Malformed input; the opener turns it into the opaque EnvelopeError."""


def text(value: str) -> bytes:
    """``str16``: a u16 big-endian byte length, then the UTF-8 bytes."""
    raw = value.encode("utf-8")
    return _U16.pack(len(raw)) + raw


def blob(value: bytes) -> bytes:
    """``bytes32``: a u32 big-endian length, then the bytes."""
    return _U32.pack(len(value)) + value


def commitment(name_text: bytes, salt: bytes, value: bytes) -> bytes:
    """SHA-256(FIELD_TAG || str16 name || salt || bytes32 value)."""
    return hashlib.sha256(FIELD_TAG + name_text + salt + _U32.pack(len(value)) + value).digest()


def message_leaf(
    context_bytes: bytes, id_bytes: bytes, timestamp_ms: int, named_commitments: Sequence[bytes]
) -> bytes:
    """SHA-256(0x00 || MESSAGE_TAG || context || id || u64 ts || u16 n || n x (str16 name || c))."""
    return hashlib.sha256(
        b"\x00"
        + MESSAGE_TAG
        + context_bytes
        + id_bytes
        + _U64.pack(timestamp_ms)
        + _U16.pack(len(named_commitments))
        + b"".join(named_commitments)
    ).digest()


def decision_leaf(
    delivery_context_bytes: bytes,
    gateway_text: bytes,
    message_leaf_hash: bytes,
    disclosed_name_texts: Sequence[bytes],
    decided_at_ms: int,
    decision: bytes,
) -> bytes:
    """SHA-256(0x00 || DECISION_TAG || context || gateway || leaf || names || ts || decision)."""
    return hashlib.sha256(
        b"\x00"
        + DECISION_TAG
        + delivery_context_bytes
        + gateway_text
        + message_leaf_hash
        + _U16.pack(len(disclosed_name_texts))
        + b"".join(disclosed_name_texts)
        + _U64.pack(decided_at_ms)
        + _U32.pack(len(decision))
        + decision
    ).digest()


def root_statement(tree: int, signer_text: bytes, key_id: bytes, size: int, root: bytes) -> bytes:
    """What a signer signs: ROOT_TAG || u8 tree || str16 signer || key id || u32 size || root."""
    return ROOT_TAG + bytes((tree,)) + signer_text + key_id + _U32.pack(size) + root


def wrap_info(
    sealer_text: bytes, recipient_text: bytes, period_seconds: int, period: int, key_id: bytes
) -> bytes:
    """HPKE ``info`` for a data key: binds it to sealer, recipient, period and recipient key."""
    return WRAP_TAG + sealer_text + recipient_text + _PERIOD.pack(period_seconds, period) + key_id


def period_bytes(period_seconds: int, period: int) -> bytes:
    return _PERIOD.pack(period_seconds, period)


# --- Merkle tree (RFC 9162 section 2.1 hashing) -----------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over ``leaves`` and every leaf's inclusion path (RFC 9162 order)."""
    count = len(leaves)
    if count == 1:
        return leaves[0], [[]]
    split = 1 << ((count - 1).bit_length() - 1)
    left_root, left_paths = merkle_tree(leaves[:split])
    right_root, right_paths = merkle_tree(leaves[split:])
    for path in left_paths:
        path.append(right_root)
    for path in right_paths:
        path.append(left_root)
    return _node(left_root, right_root), left_paths + right_paths


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion path (RFC 9162 section 2.1.3.2); raises WireError."""
    if index >= size:
        raise WireError("leaf index outside the tree")
    fn = index
    sn = size - 1
    result = leaf
    for sibling in path:
        if sn == 0:
            raise WireError("inclusion path too long")
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise WireError("inclusion path too short")
    return result


def encode_proof(key_id: bytes, index: int, size: int, path: Sequence[bytes], sig: bytes) -> bytes:
    return key_id + _PROOF_HEAD.pack(index, size) + bytes((len(path),)) + b"".join(path) + sig


class Reader:
    """Reads the primitive encodings from a buffer, refusing to run past its end."""

    __slots__ = ("buffer", "end", "offset")

    def __init__(self, buffer: bytes, offset: int = 0, end: int | None = None) -> None:
        self.buffer = buffer
        self.offset = offset
        self.end = len(buffer) if end is None else end

    def take(self, length: int) -> bytes:
        start = self.offset
        stop = start + length
        if stop > self.end:
            raise WireError("truncated")
        self.offset = stop
        return self.buffer[start:stop]

    def byte(self) -> int:
        if self.offset >= self.end:
            raise WireError("truncated")
        value = self.buffer[self.offset]
        self.offset += 1
        return value

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def text_raw(self) -> bytes:
        """A ``str16`` including its length prefix (for hashing) — checked to be UTF-8 later."""
        start = self.offset
        length = self.u16()
        self.take(length)
        return self.buffer[start : self.offset]

    def blob(self, limit: int) -> bytes:
        length = self.u32()
        if length > limit:
            raise WireError("length over limit")
        return self.take(length)

    def proof(self) -> tuple[bytes, int, int, tuple[bytes, ...], bytes]:
        key_id = self.take(KEY_ID_LENGTH)
        index, size = _PROOF_HEAD.unpack(self.take(8))
        steps = self.byte()
        if steps > MAX_PATH or size == 0 or size > MAX_BATCH:
            raise WireError("proof out of range")
        path = tuple(self.take(HASH_LENGTH) for _ in range(steps))
        return key_id, index, size, path, self.take(SIGNATURE_LENGTH)

    def finished(self) -> None:
        if self.offset != self.end:
            raise WireError("trailing bytes")


def decode_text(raw_with_length: bytes) -> str:
    try:
        return raw_with_length[2:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise WireError("text is not UTF-8") from error
