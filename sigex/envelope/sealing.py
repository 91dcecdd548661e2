"""Sealing: a publisher seals a batch for the gateway; the gateway re-seals projections.

One Ed25519 signature per batch (over a Merkle root of the batch's leaves);
one data key per (sealer, recipient, recipient key, period), wrapped once with
HPKE for the recipient and cached, so sealing a message costs hashes and one
AES-256-GCM encryption but no public-key operation.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from sigex.clock import Clock
from sigex.envelope import _wire as wire
from sigex.envelope.errors import EnvelopeError
from sigex.envelope.model import Forwarding, OutgoingRecord, SealContext
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity import _primitives as primitives
from sigex.identity.errors import IdentityError
from sigex.logs import get_logger

#: how long one data key is used before the next one is made (and, once destroyed, unreadable)
DEFAULT_KEY_PERIOD = timedelta(days=1)
RandomSource = Callable[[int], bytes]

_log = get_logger("sigex.envelope")
_HEADER_START = wire.MAGIC + bytes((wire.VERSION_1,))


def context_bytes(context: SealContext) -> bytes:
    """The context encoding of the specification (seven lengths, then seven strings)."""
    return wire.context_encoding(
        (
            context.topic,
            context.signal,
            context.schema_fingerprint,
            context.sender,
            context.recipient,
            context.purpose,
            context.agreement,
        )
    )


def uuid7(timestamp_ms: int, random10: bytes) -> bytes:
    """A UUIDv7 (RFC 9562): 48-bit milliseconds, version 7, variant 10, 74 random bits."""
    rand_a = int.from_bytes(random10[:2], "big") & 0xFFF
    rand_b = int.from_bytes(random10[2:], "big") & ((1 << 62) - 1)
    value = (timestamp_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return value.to_bytes(16, "big")


#: domain tag of a derived message id (section 4.5 of docs/envelope.md)
MESSAGE_ID_TAG = b"sigex/v1/message-id\x00"
_GCM_TAG_LENGTH = 16


def derived_message_id(sender: str, signal: str, purpose: str, signal_id: uuid.UUID) -> bytes:
    """The message id of a submission that carries ``signal_id``: a UUIDv8 (RFC 9562).

    The first 16 bytes of SHA-256(``"sigex/v1/message-id" 0x00`` || str16(sender)
    || str16(signal) || str16(purpose) || the 16 bytes of the signal id), with
    the version nibble set to 8 and the variant bits to 10. The same signal sent
    again for the same purpose gets the same id, so a replay guard refuses it.
    """
    digest = hashlib.sha256(
        MESSAGE_ID_TAG
        + wire.text(sender)
        + wire.text(signal)
        + wire.text(purpose)
        + signal_id.bytes
    ).digest()
    raw = bytearray(digest[:16])
    raw[6] = 0x80 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return bytes(raw)


def submission_size(context: SealContext, fields: Mapping[str, bytes], batch_size: int) -> int:
    """The exact length of the envelope :meth:`Sealer.seal` makes for this record.

    ``batch_size`` is the size of the batch it is sealed in (the Merkle path
    grows with it); the largest batch gives an upper bound. Lets a publisher
    refuse a record that the broker would refuse as too large, before it sends
    anything.
    """
    if not 1 <= batch_size <= wire.MAX_BATCH:
        raise EnvelopeError("the batch size must be between 1 and 65536")
    header = (
        len(_HEADER_START)
        + 1
        + len(context_bytes(context))
        + len(wire.text(context.sender))
        + wire.HEADER_FIXED
    )
    field_bytes = sum(
        wire.ENTRY.size + len(name.encode("utf-8")) + wire.SALT_LENGTH + len(value)
        for name, value in fields.items()
    )
    path = (batch_size - 1).bit_length()
    proof = (
        wire.KEY_ID_LENGTH + wire.PROOF_HEAD.size + wire.HASH_LENGTH * path + wire.SIGNATURE_LENGTH
    )
    body = wire.ID_LENGTH + 8 + 2 + field_bytes + proof
    return header + 4 + body + _GCM_TAG_LENGTH


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """One sealed submission and the message id it carries."""

    message_id: uuid.UUID
    envelope: bytes


@dataclass(frozen=True, slots=True)
class _DataKey:
    cipher: primitives.AESGCM
    #: sealer str16 || period || recipient key id || wrapped key: the header after the context
    header_tail: bytes


class Sealer:
    """Seals batches as one party; keeps its data keys and context encodings in memory."""

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: PartyDirectory,
        clock: Clock,
        random: RandomSource = os.urandom,
        key_period: timedelta = DEFAULT_KEY_PERIOD,
    ) -> None:
        period_seconds = int(key_period.total_seconds())
        if period_seconds < 1:
            raise EnvelopeError("the key period must be at least one second")
        self._identity = identity
        self._code_text = wire.text(identity.code)
        self._key_id = identity.signing_key_id
        self._clock = clock
        self._random = random
        self._period_seconds = period_seconds
        self._directory = directory
        self._data_keys: dict[tuple[str, int], _DataKey] = {}
        self._contexts: dict[SealContext, bytes] = {}
        self._names: dict[str, bytes] = {}

    def replace_directory(self, directory: PartyDirectory) -> None:
        """Use a newer directory; data keys made for old recipient keys are dropped."""
        self._directory = directory
        self._data_keys.clear()

    def forget_data_keys(self) -> None:
        """Destroy every cached data key (the next message makes a new one)."""
        self._data_keys.clear()

    # --- use case 1: publisher -> gateway -------------------------------------------------------

    def seal(self, records: Sequence[OutgoingRecord]) -> tuple[bytes, ...]:
        """Seal a batch of records: one envelope per record, one signature for the batch."""
        return tuple(sealed.envelope for sealed in self.seal_messages(records))

    def seal_messages(self, records: Sequence[OutgoingRecord]) -> tuple[SealedMessage, ...]:
        """Like :meth:`seal`, also giving each envelope's message id."""
        self._check_batch(len(records))
        for record in records:
            if record.context.sender != self._identity.code:
                self._fail("sender_is_not_sealer")
        timestamp_ms = self._now_ms()
        timestamp = wire.u64(timestamp_ms)
        sha = hashlib.sha256
        entry_pack = wire.ENTRY.pack
        field_tag = wire.FIELD_TAG
        leaves: list[bytes] = []
        bodies: list[bytes] = []
        ids: list[bytes] = []
        for record in records:
            context_raw = self._context(record.context)
            fields = record.fields
            count = len(fields)
            randomness = self._random(10 + wire.SALT_LENGTH * count)
            id_bytes = record.message_id or uuid7(timestamp_ms, randomness[:10])
            ids.append(id_bytes)
            entries = []
            records_raw = []
            names_raw = []
            commitments = []
            offset = 10
            for name, value in fields:
                name_raw = self._name(name)
                salt = randomness[offset : offset + wire.SALT_LENGTH]
                offset += wire.SALT_LENGTH
                entry = entry_pack(wire.DISCLOSED, len(name_raw), len(value))
                record_raw = name_raw + salt + value
                entries.append(entry)
                records_raw.append(record_raw)
                names_raw.append(name_raw)
                commitments.append(sha(field_tag + entry + record_raw).digest())
            pairs = wire.name_list(names_raw) + b"".join(commitments)
            leaves.append(wire.message_leaf(context_raw, id_bytes, timestamp_ms, pairs))
            bodies.append(
                id_bytes + timestamp + wire.u16(count) + b"".join(entries) + b"".join(records_raw)
            )
        proofs = self._sign_tree(wire.TREE_MESSAGES, leaves)
        return tuple(
            SealedMessage(
                uuid.UUID(bytes=id_bytes),
                self._encrypt(wire.KIND_SUBMISSION, record.context, body + proof, timestamp_ms),
            )
            for record, id_bytes, body, proof in zip(records, ids, bodies, proofs, strict=True)
        )

    # --- use case 3: the gateway re-seals a projection for a recipient ---------------------------

    def forward(self, items: Sequence[Forwarding]) -> tuple[bytes, ...]:
        """Re-seal projected messages for their recipients, keeping the sender's proofs.

        The gateway signs one Merkle root over its decisions for the whole batch.
        """
        self._check_batch(len(items))
        decided_at_ms = self._now_ms()
        leaves: list[bytes] = []
        bodies: list[bytes] = []
        for item in items:
            message = item.message
            origin_raw = self._context(message.context)
            delivery_raw = self._context(item.context)
            section, pairs, disclosed_names = wire.encode_fields(
                [self._name(n) for n in message.names],
                message.commitments,
                message.salts,
                message.field_values,
            )
            proof = message.proof
            leaf = wire.message_leaf(origin_raw, message.id_bytes, message.timestamp_ms, pairs)
            leaves.append(
                wire.decision_leaf(
                    delivery_raw,
                    self._code_text,
                    leaf,
                    disclosed_names,
                    decided_at_ms,
                    item.decision,
                )
            )
            bodies.append(
                origin_raw
                + message.id_bytes
                + wire.u64(message.timestamp_ms)
                + section
                + wire.encode_proof(
                    proof.key_id, proof.leaf_index, proof.tree_size, proof.path, proof.signature
                )
                + wire.u64(decided_at_ms)
                + wire.blob(item.decision)
            )
        proofs = self._sign_tree(wire.TREE_DECISIONS, leaves)
        return tuple(
            self._encrypt(wire.KIND_DELIVERY, item.context, body + proof, decided_at_ms)
            for item, body, proof in zip(items, bodies, proofs, strict=True)
        )

    # --- shared steps ---------------------------------------------------------------------------

    def _check_batch(self, size: int) -> None:
        if not 1 <= size <= wire.MAX_BATCH:
            self._fail("batch_size_out_of_range")

    def _now_ms(self) -> int:
        """Now in milliseconds, after checking that our signing key is the current valid one."""
        now = self._clock.now()
        try:
            current = self._directory.signing_key(self._identity.code, now)
        except IdentityError:
            self._fail("own_signing_key_not_valid")
        if current.key_id != self._key_id:
            self._fail("own_signing_key_not_current")
        return int(now.timestamp() * 1000)

    def _context(self, context: SealContext) -> bytes:
        raw = self._contexts.get(context)
        if raw is None:
            if len(self._contexts) > 4096:
                self._contexts.clear()
            raw = self._contexts.setdefault(context, context_bytes(context))
        return raw

    def _name(self, name: str) -> bytes:
        raw = self._names.get(name)
        if raw is None:
            raw = name.encode("utf-8")
            if not 1 <= len(raw) <= wire.MAX_NAME_BYTES:
                self._fail("field_name_length")
            if len(self._names) < 65536:
                self._names[name] = raw
        return raw

    def _sign_tree(self, tree: int, leaves: list[bytes]) -> list[bytes]:
        root, paths = wire.merkle_tree(leaves)
        size = len(leaves)
        statement = wire.root_statement(tree, self._code_text, self._key_id, size, root)
        signature = primitives.sign(self._identity.signing_key, statement)
        return [
            wire.encode_proof(self._key_id, index, size, path, signature)
            for index, path in enumerate(paths)
        ]

    def _data_key(self, recipient: str, timestamp_ms: int) -> _DataKey:
        period = timestamp_ms // 1000 // self._period_seconds
        cached = self._data_keys.get((recipient, period))
        if cached is not None:
            return cached
        try:
            record = self._directory.encryption_key(recipient, self._clock.now())
        except IdentityError:
            self._fail("recipient_has_no_encryption_key")
        recipient_text = wire.text(recipient)
        period_raw = wire.PERIOD.pack(self._period_seconds, period)
        info = wire.wrap_info(self._code_text, recipient_text, period_raw, record.key_id)
        secret = self._random(32)
        wrapped = primitives.hpke_wrap(
            primitives.encryption_public_key(record.public_key), secret, info
        )
        entry = _DataKey(
            cipher=primitives.aead(secret),
            header_tail=self._code_text + period_raw + record.key_id + wrapped,
        )
        if len(self._data_keys) > 1024:
            self._data_keys.clear()
        self._data_keys[(recipient, period)] = entry
        return entry

    def _encrypt(self, kind: int, context: SealContext, body: bytes, timestamp_ms: int) -> bytes:
        data_key = self._data_key(context.recipient, timestamp_ms)
        nonce = self._random(wire.NONCE_LENGTH)
        header = (
            _HEADER_START + bytes((kind,)) + self._context(context) + data_key.header_tail + nonce
        )
        ciphertext = data_key.cipher.encrypt(nonce, body, header)
        return header + wire.u32(len(ciphertext)) + ciphertext

    def _fail(self, reason: str) -> NoReturn:
        _log.warning("envelope_seal_refused", reason=reason, party=self._identity.code)
        raise EnvelopeError("envelope could not be sealed")
