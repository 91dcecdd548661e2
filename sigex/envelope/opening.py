"""Opening: the gateway opens submissions, a recipient opens deliveries; both verify.

Every failure, whatever its cause, leaves as the one opaque ``EnvelopeError``;
the cause is logged (a reason code, never a value). Unwrapped data keys and
verified Merkle roots are cached, so opening a message costs AES-256-GCM,
a few SHA-256 and no public-key operation once its batch root is known.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sigex.clock import Clock
from sigex.envelope import _wire as wire
from sigex.envelope.errors import EnvelopeError, KeyDestroyed
from sigex.envelope.model import DeliveredMessage, OpenedMessage, Proof, SealContext
from sigex.envelope.sealing import context_bytes
from sigex.errors import SigexError
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity import _primitives as primitives
from sigex.logs import get_logger
from sigex.roles import Role

DEFAULT_MAX_ENVELOPE_BYTES = 1 << 20
_CACHE_LIMIT = 65536
_MAGIC_V1 = wire.MAGIC + bytes((wire.VERSION_1,))

_log = get_logger("sigex.envelope")
_KEY_DESTROYED = "recipient_key_destroyed"

_ProofTuple = wire.ProofTuple


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reject(reason: str) -> NoReturn:
    raise _Rejected(reason)


_EXPECTED_FAILURES = (
    _Rejected,
    wire.WireError,
    primitives.CryptoFailure,
    SigexError,
    struct.error,
    ValueError,
    IndexError,
    UnicodeDecodeError,
    OverflowError,
)


def _parse_context(buffer: bytes, offset: int) -> tuple[tuple[str, ...], int]:
    """The seven strings of a context encoding at ``offset`` and the offset after it."""
    lengths = wire.CONTEXT_LENGTHS.unpack_from(buffer, offset)
    position = offset + 14
    values = []
    for length in lengths:
        end = position + length
        if end > len(buffer):
            raise wire.WireError("truncated context")
        values.append(buffer[position:end].decode("utf-8"))
        position = end
    return tuple(values), position


def _proof(signer: str, raw: _ProofTuple) -> Proof:
    key_id, index, size, path, signature = raw
    return Proof(signer, key_id, index, size, path, signature)


class Opener:
    """Opens and verifies envelopes addressed to one party.

    ``gateway`` is the only party whose re-sealed deliveries this opener accepts.
    """

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: PartyDirectory,
        clock: Clock,
        gateway: str = Role.GATEWAY,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        self._code = identity.code
        self._code_text = wire.text(identity.code)
        self._gateway = gateway
        self._gateway_text = wire.text(gateway)
        self._clock = clock
        self._max = max_envelope_bytes
        self._private_keys = {
            primitives.key_id(primitives.raw_public_encryption(key)): key
            for key in (identity.encryption_key, *identity.retired_encryption_keys)
        }
        self._directory = directory
        self._destroyed_key_ids: frozenset[bytes] = frozenset()
        self._data_keys: dict[bytes, primitives.AESGCM] = {}
        self._verified_roots: set[bytes] = set()
        self._verifying_keys: dict[tuple[bytes, bytes], _KeyValidity] = {}
        self._contexts: dict[bytes, SealContext] = {}
        self._names: dict[bytes, tuple[str, ...]] = {}
        self._forget_destroyed_keys()

    def replace_directory(self, directory: PartyDirectory) -> None:
        """Use a newer directory (after a rotation, revocation or shredding).

        Forgets verified roots, and every private key the directory now lists as destroyed.
        """
        self._directory = directory
        self._verified_roots.clear()
        self._verifying_keys.clear()
        self._forget_destroyed_keys()

    def _forget_destroyed_keys(self) -> None:
        try:
            records = self._directory.party(self._code).encryption_keys
        except SigexError:
            return  # a party missing from the directory opens nothing anyway
        destroyed = frozenset(r.key_id for r in records if r.destroyed)
        if destroyed - self._destroyed_key_ids:
            for key_id in destroyed:
                self._private_keys.pop(key_id, None)
            self._data_keys.clear()  # data keys unwrapped with a destroyed key go too
        self._destroyed_key_ids = destroyed

    def forget_data_keys(self) -> None:
        """Destroy every cached data key."""
        self._data_keys.clear()

    # --- public operations ----------------------------------------------------------------------

    def open_submission(self, envelope: bytes, *, topic: str) -> OpenedMessage:
        """Open and verify a publisher's envelope read from ``topic`` (use case 2)."""
        try:
            return self._open_submission(envelope, topic)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("open_submission", error, envelope)

    def open_delivery(self, envelope: bytes, *, topic: str) -> DeliveredMessage:
        """Open a gateway's delivery read from ``topic``; checks both signatures (use case 4)."""
        try:
            return self._open_delivery(envelope, topic)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("open_delivery", error, envelope)

    def verify(self, message: OpenedMessage | DeliveredMessage) -> None:
        """Check the proofs of an already opened (possibly projected) message again."""
        try:
            self._verify_message(message)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("verify", error, b"")

    # --- internals ------------------------------------------------------------------------------

    def _log_rejection(self, operation: str, error: Exception, envelope: object) -> NoReturn:
        reason = error.reason if isinstance(error, _Rejected) else type(error).__name__
        size = len(envelope) if isinstance(envelope, bytes) else -1
        _log.warning(
            "envelope_rejected", operation=operation, reason=reason, party=self._code, size=size
        )
        if reason == _KEY_DESTROYED:
            raise KeyDestroyed() from None
        raise EnvelopeError() from None

    def _context(self, raw: bytes) -> SealContext:
        context = self._contexts.get(raw)
        if context is None:
            values, end = _parse_context(raw, 0)
            if end != len(raw):
                _reject("context_length")
            context = SealContext(*values)
            if len(self._contexts) >= _CACHE_LIMIT:
                self._contexts.clear()
            self._contexts[raw] = context
        return context

    def _name_strings(self, fields: wire.ParsedFields) -> tuple[str, ...]:
        # the same schema gives the same name list every time: decode it once
        names = self._names.get(fields.names_key)
        if names is None:
            names = tuple(raw.decode("utf-8") for raw in fields.names)
            if len(self._names) >= _CACHE_LIMIT:
                self._names.clear()
            self._names[fields.names_key] = names
        return names

    def _header(
        self, envelope: bytes, topic: str, kind: int
    ) -> tuple[SealContext, bytes, bytes, bytes]:
        """Parse and check the header, decrypt; returns context, its encoding, sealer, plaintext."""
        if not isinstance(envelope, bytes):
            _reject("not_bytes")
        size = len(envelope)
        if size > self._max:
            _reject("oversized")
        if envelope[:4] != _MAGIC_V1:
            _reject("bad_magic_or_unsupported_version")
        if envelope[4:5] != bytes((kind,)):
            _reject("wrong_kind")
        lengths = wire.CONTEXT_LENGTHS.unpack_from(envelope, 5)
        context_end = 19 + sum(lengths)
        context_raw = envelope[5:context_end]
        (sealer_length,) = wire.U16.unpack_from(envelope, context_end)
        tail_start = context_end
        key_id_start = context_end + 2 + sealer_length + 12
        nonce_start = key_id_start + wire.KEY_ID_LENGTH + wire.WRAPPED_KEY_LENGTH
        header_end = nonce_start + wire.NONCE_LENGTH
        (ciphertext_length,) = wire.U32.unpack_from(envelope, header_end)
        if header_end + 4 + ciphertext_length != size:
            _reject("length_mismatch")
        context = self._context(context_raw)
        if context.recipient != self._code:
            _reject("not_addressed_to_us")
        if context.topic != topic:
            _reject("topic_mismatch")
        cache_key = envelope[tail_start:nonce_start]
        cipher = self._data_keys.get(cache_key)
        if cipher is None:
            cipher = self._unwrap(envelope, tail_start, key_id_start, nonce_start)
            if len(self._data_keys) >= _CACHE_LIMIT:
                self._data_keys.clear()
            self._data_keys[cache_key] = cipher
        plaintext = primitives.aead_open(
            cipher,
            envelope[nonce_start:header_end],
            envelope[header_end + 4 :],
            envelope[:header_end],
        )
        sealer = envelope[tail_start : key_id_start - 12]
        return context, context_raw, sealer, plaintext

    def _unwrap(
        self, envelope: bytes, sealer_start: int, key_id_start: int, wrapped_start: int
    ) -> primitives.AESGCM:
        recipient_key_id = envelope[key_id_start : key_id_start + wire.KEY_ID_LENGTH]
        private_key = self._private_keys.get(recipient_key_id)
        if private_key is None:
            if recipient_key_id in self._destroyed_key_ids:
                _reject(_KEY_DESTROYED)
            _reject("unknown_recipient_key")
        sealer = envelope[sealer_start : key_id_start - 12]
        wire.decode_text(sealer)
        period = envelope[key_id_start - 12 : key_id_start]
        info = wire.wrap_info(sealer, self._code_text, period, recipient_key_id)
        wrapped = envelope[wrapped_start - wire.WRAPPED_KEY_LENGTH : wrapped_start]
        return primitives.aead(primitives.hpke_unwrap(private_key, wrapped, info))

    def _check_proof(
        self,
        tree: int,
        signer_text: bytes,
        leaf: bytes,
        proof: _ProofTuple,
        signed_at_ms: int,
        now_ms: int,
    ) -> None:
        key_id, index, size, path, signature = proof
        root = wire.root_from_path(leaf, index, size, path)
        validity = self._verifying_keys.get((signer_text, key_id))
        if validity is None:
            validity = self._load_key(signer_text, key_id)
        if not validity.verifies(signed_at_ms, now_ms):
            _reject("signing_key_not_valid")
        statement = wire.root_statement(tree, signer_text, key_id, size, root)
        cache_key = statement + signature
        if cache_key in self._verified_roots:
            return
        primitives.verify_signature(validity.key, signature, statement)
        if len(self._verified_roots) >= _CACHE_LIMIT:
            self._verified_roots.clear()
        self._verified_roots.add(cache_key)

    def _load_key(self, signer_text: bytes, key_id: bytes) -> _KeyValidity:
        signer = wire.decode_text(signer_text)
        for record in self._directory.party(signer).signing_keys:
            if record.key_id == key_id:
                validity = _KeyValidity(
                    key=primitives.verifying_key(record.public_key),
                    not_before_ms=_ms(record.not_before),
                    not_after_ms=_ms(record.not_after),
                    revoked_ms=None if record.revoked_at is None else _ms(record.revoked_at),
                )
                if len(self._verifying_keys) >= _CACHE_LIMIT:
                    self._verifying_keys.clear()
                self._verifying_keys[(signer_text, key_id)] = validity
                return validity
        _reject("unknown_signing_key")

    def _now_ms(self) -> int:
        return _ms(self._clock.now())

    def _open_submission(self, envelope: bytes, topic: str) -> OpenedMessage:
        context, context_raw, sealer, plaintext = self._header(
            envelope, topic, wire.KIND_SUBMISSION
        )
        if sealer[2:] != context.sender.encode("utf-8"):
            _reject("sealer_is_not_sender")
        id_bytes = plaintext[: wire.ID_LENGTH]
        (timestamp_ms,) = wire.U64.unpack_from(plaintext, wire.ID_LENGTH)
        fields = wire.read_disclosed_fields(plaintext, wire.ID_LENGTH + 8)
        proof, end = wire.read_proof(plaintext, fields.end)
        if end != len(plaintext):
            _reject("trailing_bytes")
        leaf = wire.message_leaf(context_raw, id_bytes, timestamp_ms, fields.names_commitments)
        self._check_proof(wire.TREE_MESSAGES, sealer, leaf, proof, timestamp_ms, self._now_ms())
        return OpenedMessage(
            context=context,
            id_bytes=id_bytes,
            timestamp_ms=timestamp_ms,
            names=self._name_strings(fields),
            commitments=tuple(fields.commitments),
            salts=tuple(fields.salts),
            field_values=tuple(fields.values),
            proof=_proof(context.sender, proof),
        )

    def _open_delivery(self, envelope: bytes, topic: str) -> DeliveredMessage:
        context, context_raw, sealer, plaintext = self._header(envelope, topic, wire.KIND_DELIVERY)
        if sealer != self._gateway_text:
            _reject("sealer_is_not_the_gateway")
        _, origin_end = _parse_context(plaintext, 0)
        origin_raw = plaintext[:origin_end]
        origin = self._context(origin_raw)
        if (origin.signal, origin.schema_fingerprint, origin.sender) != (
            context.signal,
            context.schema_fingerprint,
            context.sender,
        ):
            _reject("delivery_changes_signal_schema_or_sender")
        if origin.recipient != self._gateway:
            _reject("origin_not_addressed_to_the_gateway")
        id_bytes = plaintext[origin_end : origin_end + wire.ID_LENGTH]
        (timestamp_ms,) = wire.U64.unpack_from(plaintext, origin_end + wire.ID_LENGTH)
        fields = wire.read_fields(plaintext, origin_end + wire.ID_LENGTH + 8, all_disclosed=False)
        sender_proof, position = wire.read_proof(plaintext, fields.end)
        (decided_at_ms,) = wire.U64.unpack_from(plaintext, position)
        (decision_length,) = wire.U32.unpack_from(plaintext, position + 8)
        decision_end = position + 12 + decision_length
        if decision_end > len(plaintext):
            _reject("truncated_decision")
        decision = plaintext[position + 12 : decision_end]
        gateway_proof, end = wire.read_proof(plaintext, decision_end)
        if end != len(plaintext):
            _reject("trailing_bytes")
        now_ms = self._now_ms()
        leaf = wire.message_leaf(origin_raw, id_bytes, timestamp_ms, fields.names_commitments)
        sender_text = wire.text(origin.sender)
        self._check_proof(wire.TREE_MESSAGES, sender_text, leaf, sender_proof, timestamp_ms, now_ms)
        decision_leaf = wire.decision_leaf(
            context_raw, sealer, leaf, fields.disclosed_names, decided_at_ms, decision
        )
        self._check_proof(
            wire.TREE_DECISIONS, sealer, decision_leaf, gateway_proof, decided_at_ms, now_ms
        )
        return DeliveredMessage(
            context=context,
            origin=origin,
            gateway=self._gateway,
            id_bytes=id_bytes,
            timestamp_ms=timestamp_ms,
            names=self._name_strings(fields),
            commitments=tuple(fields.commitments),
            salts=tuple(fields.salts),
            field_values=tuple(fields.values),
            decision=decision,
            decided_at_ms=decided_at_ms,
            sender_proof=_proof(origin.sender, sender_proof),
            gateway_proof=_proof(self._gateway, gateway_proof),
        )

    def _verify_message(self, message: OpenedMessage | DeliveredMessage) -> None:
        origin = message.context if isinstance(message, OpenedMessage) else message.origin
        sender_proof = message.proof if isinstance(message, OpenedMessage) else message.sender_proof
        names = [name.encode("utf-8") for name in message.names]
        for name, digest, salt, value in zip(
            names, message.commitments, message.salts, message.field_values, strict=True
        ):
            if value is None:
                continue
            if salt is None or len(salt) != wire.SALT_LENGTH:
                _reject("disclosed_field_without_salt")
            entry = wire.ENTRY.pack(wire.DISCLOSED, len(name), len(value))
            if wire.commitment(entry, name, salt, value) != digest:
                _reject("field_does_not_match_commitment")
        _, pairs, disclosed_names = wire.encode_fields(
            names, message.commitments, message.salts, message.field_values
        )
        now_ms = self._now_ms()
        leaf = wire.message_leaf(
            context_bytes(origin), message.id_bytes, message.timestamp_ms, pairs
        )
        self._check_proof(
            wire.TREE_MESSAGES,
            wire.text(origin.sender),
            leaf,
            _tuple(sender_proof),
            message.timestamp_ms,
            now_ms,
        )
        if isinstance(message, DeliveredMessage):
            gateway_text = wire.text(message.gateway)
            if gateway_text != self._gateway_text:
                _reject("sealer_is_not_the_gateway")
            decision_leaf = wire.decision_leaf(
                context_bytes(message.context),
                gateway_text,
                leaf,
                disclosed_names,
                message.decided_at_ms,
                message.decision,
            )
            self._check_proof(
                wire.TREE_DECISIONS,
                gateway_text,
                decision_leaf,
                _tuple(message.gateway_proof),
                message.decided_at_ms,
                now_ms,
            )


@dataclass(frozen=True, slots=True)
class _KeyValidity:
    """A signer's key object with its validity in milliseconds, cached per (signer, key id)."""

    key: primitives.Ed25519PublicKey
    not_before_ms: int
    not_after_ms: int
    revoked_ms: int | None

    def verifies(self, signed_at_ms: int, now_ms: int) -> bool:
        # same rule as PublicKeyRecord.verifies: in period when signed, not revoked by now
        if not self.not_before_ms <= signed_at_ms < self.not_after_ms:
            return False
        return self.revoked_ms is None or (
            now_ms < self.revoked_ms and signed_at_ms < self.revoked_ms
        )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _tuple(proof: Proof) -> _ProofTuple:
    return proof.key_id, proof.leaf_index, proof.tree_size, proof.path, proof.signature
