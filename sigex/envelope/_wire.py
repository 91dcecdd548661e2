"""Envelope version 1 on the wire: encodings, domain-separated hashes and the Merkle tree.

``docs/envelope.md`` is the specification; this module follows it section by
section. Everything here is pure computation on bytes. Parsing works on
offsets into one buffer with lengths read from small tables, because per-call
overhead, not hashing, dominates the cost of opening in Python.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from sigex import merkle

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
MAX_FIELDS = 1024
MAX_NAME_BYTES = 255
CONTEXT_TEXTS = 7

FIELD_TAG = b"sigex/v1/field\x00"
MESSAGE_TAG = b"\x00sigex/v1/message\x00"  # leaf hashes start with 0x00 (RFC 9162)
DECISION_TAG = b"\x00sigex/v1/decision\x00"
ROOT_TAG = b"sigex/v1/root\x00"
WRAP_TAG = b"sigex/v1/data-key\x00"
TREE_MESSAGES = 1
TREE_DECISIONS = 2
DISCLOSED = 1
WITHHELD = 0

U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
CONTEXT_LENGTHS = struct.Struct(">7H")
PERIOD = struct.Struct(">IQ")
ENTRY = struct.Struct(">BBI")  # field table entry: flag, name length, value length
PROOF_HEAD = struct.Struct(">IIB")  # leaf index, tree size, path length
HEADER_FIXED = 12 + KEY_ID_LENGTH + WRAPPED_KEY_LENGTH + NONCE_LENGTH

u16 = U16.pack
u32 = U32.pack
u64 = U64.pack
_sha256 = hashlib.sha256
_tables: dict[int, struct.Struct] = {}


class WireError(Exception):
    """Malformed input; the opener turns it into the opaque EnvelopeError."""


def text(value: str) -> bytes:
    """``str16``: a u16 big-endian byte length, then the UTF-8 bytes."""
    raw = value.encode("utf-8")
    return U16.pack(len(raw)) + raw


def blob(value: bytes) -> bytes:
    """``bytes32``: a u32 big-endian length, then the bytes."""
    return U32.pack(len(value)) + value


def context_encoding(values: Sequence[str]) -> bytes:
    """Seven u16 byte lengths, then the seven UTF-8 strings (the context, section 3.2)."""
    raws = [v.encode("utf-8") for v in values]
    return CONTEXT_LENGTHS.pack(*(len(r) for r in raws)) + b"".join(raws)


def table_struct(count: int) -> struct.Struct:
    table = _tables.get(count)
    if table is None:
        table = _tables.setdefault(count, struct.Struct(">" + "BBI" * count))
    return table


def commitment(entry: bytes, name: bytes, salt: bytes, value: bytes) -> bytes:
    """SHA-256(FIELD_TAG || entry (flag, name length, value length) || name || salt || value)."""
    return _sha256(FIELD_TAG + entry + name + salt + value).digest()


def message_leaf(
    context: bytes, id_bytes: bytes, timestamp_ms: int, names_commitments: bytes
) -> bytes:
    """SHA-256(MESSAGE_TAG || context || id || u64 ts || names_commitments).

    ``names_commitments`` is ``name_list(names) || the n commitments``.
    """
    return _sha256(
        MESSAGE_TAG + context + id_bytes + U64.pack(timestamp_ms) + names_commitments
    ).digest()


def decision_leaf(
    delivery_context: bytes,
    gateway_text: bytes,
    message_leaf_hash: bytes,
    disclosed_names: bytes,
    decided_at_ms: int,
    decision: bytes,
) -> bytes:
    """SHA-256(DECISION_TAG || context || gateway || leaf || names || ts || decision)."""
    return _sha256(
        DECISION_TAG
        + delivery_context
        + gateway_text
        + message_leaf_hash
        + disclosed_names
        + U64.pack(decided_at_ms)
        + U32.pack(len(decision))
        + decision
    ).digest()


def root_statement(tree: int, signer_text: bytes, key_id: bytes, size: int, root: bytes) -> bytes:
    """What a signer signs: ROOT_TAG || u8 tree || str16 signer || key id || u32 size || root."""
    return ROOT_TAG + bytes((tree,)) + signer_text + key_id + U32.pack(size) + root


def wrap_info(sealer_text: bytes, recipient_text: bytes, period: bytes, key_id: bytes) -> bytes:
    """HPKE ``info`` for a data key: binds it to sealer, recipient, period and recipient key."""
    return WRAP_TAG + sealer_text + recipient_text + period + key_id


# --- Merkle tree: sigex.merkle (RFC 9162 section 2.1 hashing) ---------------------------------

merkle_tree = merkle.root_and_paths


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion path (RFC 9162 section 2.1.3.2); raises WireError."""
    root = merkle.root_from_inclusion(leaf, index, size, path)
    if root is None:
        raise WireError("inclusion path does not fit the tree (index, size or length)")
    return root


# --- proofs -----------------------------------------------------------------------------------

ProofTuple = tuple[bytes, int, int, tuple[bytes, ...], bytes]


def encode_proof(key_id: bytes, index: int, size: int, path: Sequence[bytes], sig: bytes) -> bytes:
    return key_id + PROOF_HEAD.pack(index, size, len(path)) + b"".join(path) + sig


def read_proof(buffer: bytes, offset: int) -> tuple[ProofTuple, int]:
    key_id = buffer[offset : offset + KEY_ID_LENGTH]
    index, size, steps = PROOF_HEAD.unpack_from(buffer, offset + KEY_ID_LENGTH)
    if steps > MAX_PATH or size == 0 or size > MAX_BATCH:
        raise WireError("proof out of range")
    start = offset + KEY_ID_LENGTH + 9
    end = start + HASH_LENGTH * steps + SIGNATURE_LENGTH
    if end > len(buffer) or len(key_id) != KEY_ID_LENGTH:
        raise WireError("truncated proof")
    path = tuple(buffer[p : p + HASH_LENGTH] for p in range(start, end - 64, HASH_LENGTH))
    return (key_id, index, size, path, buffer[end - SIGNATURE_LENGTH : end]), end


# --- fields -----------------------------------------------------------------------------------


class ParsedFields:
    """The field section of a body, parsed: parallel tuples plus the bytes the leaves hash."""

    __slots__ = (
        "commitments",
        "disclosed_names",
        "end",
        "names",
        "names_commitments",
        "names_key",
        "salts",
        "values",
    )

    def __init__(
        self,
        names: list[bytes],
        commitments: list[bytes],
        salts: list[bytes | None],
        values: list[bytes | None],
        names_key: bytes,
        names_commitments: bytes,
        disclosed_names: bytes,
        end: int,
    ) -> None:
        self.names_key = names_key
        self.names = names
        self.commitments = commitments
        self.salts = salts
        self.values = values
        self.names_commitments = names_commitments
        self.disclosed_names = disclosed_names
        self.end = end


def read_disclosed_fields(buffer: bytes, offset: int) -> ParsedFields:
    """The fast path of :func:`read_fields` for a submission, where every field is disclosed."""
    (count,) = U16.unpack_from(buffer, offset)
    if count > MAX_FIELDS:
        raise WireError("too many fields")
    table_start = offset + 2
    position = table_start + 6 * count
    entries = table_struct(count).unpack_from(buffer, table_start)
    if entries[0::3].count(DISCLOSED) != count:
        raise WireError("a submission discloses every field")
    table = buffer[table_start:position]
    names: list[bytes] = []
    commitments: list[bytes] = []
    salts: list[bytes | None] = []
    values: list[bytes | None] = []
    previous = b""
    sha = _sha256
    tag = FIELD_TAG
    for name_length, value_length, entry_start in zip(
        entries[1::3], entries[2::3], range(0, 6 * count, 6), strict=True
    ):
        name_end = position + name_length
        salt_end = name_end + SALT_LENGTH
        end = salt_end + value_length
        name = buffer[position:name_end]
        if name <= previous:
            raise WireError("field names empty or out of order")
        previous = name
        commitments.append(
            sha(tag + table[entry_start : entry_start + 6] + buffer[position:end]).digest()
        )
        names.append(name)
        salts.append(buffer[name_end:salt_end])
        values.append(buffer[salt_end:end])
        position = end
    if position > len(buffer):
        raise WireError("truncated field")  # slices past the end were short: nothing is used
    names_key = name_list(names)
    return ParsedFields(
        names,
        commitments,
        salts,
        values,
        names_key,
        names_key + b"".join(commitments),
        b"",
        position,
    )


def read_fields(buffer: bytes, offset: int, *, all_disclosed: bool) -> ParsedFields:
    """Parse ``u16 n || n x entry || n x record`` at ``offset`` (section 3.5)."""
    (count,) = U16.unpack_from(buffer, offset)
    if count > MAX_FIELDS:
        raise WireError("too many fields")
    table_start = offset + 2
    position = table_start + 6 * count
    entries = table_struct(count).unpack_from(buffer, table_start)
    table = buffer[table_start:position]
    size = len(buffer)
    names: list[bytes] = []
    commitments: list[bytes] = []
    salts: list[bytes | None] = []
    values: list[bytes | None] = []
    disclosed: list[bytes] = []
    previous = b""
    sha = _sha256
    tag = FIELD_TAG
    for flag, name_length, value_length, entry_start in zip(
        entries[0::3], entries[1::3], entries[2::3], range(0, 6 * count, 6), strict=True
    ):
        name_end = position + name_length
        name = buffer[position:name_end]
        if name <= previous or name_end > size:
            raise WireError("field names empty, out of order or truncated")
        previous = name
        if flag == DISCLOSED:
            salt_end = name_end + SALT_LENGTH
            end = salt_end + value_length
            if end > size:
                raise WireError("truncated field")
            commitments.append(
                sha(tag + table[entry_start : entry_start + 6] + buffer[position:end]).digest()
            )
            salts.append(buffer[name_end:salt_end])
            values.append(buffer[salt_end:end])
            disclosed.append(name)
        elif flag == WITHHELD and value_length == 0 and not all_disclosed:
            end = name_end + HASH_LENGTH
            if end > size:
                raise WireError("truncated field")
            commitments.append(buffer[name_end:end])
            salts.append(None)
            values.append(None)
        else:
            raise WireError("bad field flag")
        names.append(name)
        position = end
    names_key = name_list(names)
    return ParsedFields(
        names,
        commitments,
        salts,
        values,
        names_key,
        names_key + b"".join(commitments),
        name_list(disclosed),
        position,
    )


def name_list(names: Sequence[bytes]) -> bytes:
    """``u16 n || n x u8 length || the names``: how leaves hash a list of field names."""
    return U16.pack(len(names)) + bytes([len(n) for n in names]) + b"".join(names)


def encode_fields(
    names: Sequence[bytes],
    commitments: Sequence[bytes],
    salts: Sequence[bytes | None],
    values: Sequence[bytes | None],
) -> tuple[bytes, bytes, bytes]:
    """The field section, the leaf's names-and-commitments and the disclosed names."""
    entries = []
    records = []
    disclosed = []
    for name, digest, salt, value in zip(names, commitments, salts, values, strict=True):
        if value is not None and salt is not None:
            entries.append(ENTRY.pack(DISCLOSED, len(name), len(value)))
            records.append(name + salt + value)
            disclosed.append(name)
        else:
            entries.append(ENTRY.pack(WITHHELD, len(name), 0))
            records.append(name + digest)
    section = U16.pack(len(names)) + b"".join(entries) + b"".join(records)
    return section, name_list(names) + b"".join(commitments), name_list(disclosed)


def decode_text(raw_with_length: bytes) -> str:
    """The string of a ``str16`` whose length prefix was already checked."""
    return raw_with_length[2:].decode("utf-8")
