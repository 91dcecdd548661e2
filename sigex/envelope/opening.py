"""Opening: the gateway opens submissions, a recipient opens deliveries; both verify.

Every failure, whatever its cause, leaves as the one opaque ``EnvelopeError``;
the cause is logged (a reason code, never a value). Unwrapped data keys and
verified Merkle roots are cached, so opening a message costs AES-256-GCM,
a few SHA-256 and no public-key operation once its batch root is known.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

from sigex.clock import Clock
from sigex.envelope import _wire as wire
from sigex.envelope.errors import EnvelopeError
from sigex.envelope.model import DeliveredMessage, Field, OpenedMessage, Proof, SealContext
from sigex.envelope.sealing import context_bytes
from sigex.errors import SigexError
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity import _primitives as primitives
from sigex.logs import get_logger

DEFAULT_MAX_ENVELOPE_BYTES = 1 << 20
DEFAULT_GATEWAY = "GATEWAY"
_CACHE_LIMIT = 65536
_CONTEXT_TEXTS = 7

_log = get_logger("sigex.envelope")

_ProofTuple = tuple[bytes, int, int, tuple[bytes, ...], bytes]


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
    OverflowError,
)


def _context(texts: Sequence[bytes]) -> SealContext:
    topic, signal, fingerprint, sender, recipient, purpose, agreement = (
        wire.decode_text(t) for t in texts
    )
    return SealContext(topic, signal, fingerprint, sender, recipient, purpose, agreement)


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
        gateway: str = DEFAULT_GATEWAY,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        self._code = identity.code
        self._code_text = wire.text(identity.code)
        self._gateway_text = wire.text(gateway)
        self._clock = clock
        self._max = max_envelope_bytes
        self._private_keys = {
            primitives.key_id(primitives.raw_public_encryption(key)): key
            for key in (identity.encryption_key, *identity.retired_encryption_keys)
        }
        self._directory = directory
        self._data_keys: dict[bytes, primitives.AESGCM] = {}
        self._verified_roots: set[bytes] = set()
        self._verifying_keys: dict[tuple[str, bytes], primitives.Ed25519PublicKey] = {}

    def replace_directory(self, directory: PartyDirectory) -> None:
        """Use a newer directory (after a rotation or revocation); forgets verified roots."""
        self._directory = directory
        self._verified_roots.clear()
        self._verifying_keys.clear()

    def forget_data_keys(self) -> None:
        self._data_keys.clear()

    # --- public operations ----------------------------------------------------------------------

    def open_submission(self, envelope: bytes, *, topic: str) -> OpenedMessage:
        """Open and verify a publisher's envelope read from ``topic`` (use case 2)."""
        try:
            return self._open_submission(envelope, topic)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("open_submission", error, len(envelope))
        raise AssertionError("unreachable")  # pragma: no cover

    def open_delivery(self, envelope: bytes, *, topic: str) -> DeliveredMessage:
        """Open a gateway's delivery read from ``topic``; checks both signatures (use case 4)."""
        try:
            return self._open_delivery(envelope, topic)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("open_delivery", error, len(envelope))
        raise AssertionError("unreachable")  # pragma: no cover

    def verify(self, message: OpenedMessage | DeliveredMessage) -> None:
        """Check the proofs of an already opened (possibly projected) message again."""
        try:
            self._verify_message(message)
        except _EXPECTED_FAILURES as error:
            self._log_rejection("verify", error, 0)

    # --- internals ------------------------------------------------------------------------------

    def _log_rejection(self, operation: str, error: Exception, size: int) -> NoReturn:
        reason = error.reason if isinstance(error, _Rejected) else type(error).__name__
        _log.warning(
            "envelope_rejected", operation=operation, reason=reason, party=self._code, size=size
        )
        raise EnvelopeError() from None

    def _now(self) -> datetime:
        return self._clock.now()

    def _header(
        self, envelope: bytes, topic: str, kind: int
    ) -> tuple[list[bytes], bytes, bytes, bytes]:
        """Parse and check the header; returns context texts, context bytes, sealer, plaintext."""
        if not isinstance(envelope, bytes):
            _reject("not_bytes")
        if len(envelope) > self._max:
            _reject("oversized")
        reader = wire.Reader(envelope)
        if reader.take(3) != wire.MAGIC:
            _reject("bad_magic")
        if reader.byte() != wire.VERSION_1:
            _reject("unsupported_version")
        if reader.byte() != kind:
            _reject("wrong_kind")
        start = reader.offset
        texts = [reader.text_raw() for _ in range(_CONTEXT_TEXTS)]
        context_raw = envelope[start : reader.offset]
        tail_start = reader.offset
        sealer = reader.text_raw()
        period = reader.take(12)
        recipient_key_id = reader.take(wire.KEY_ID_LENGTH)
        reader.take(wire.WRAPPED_KEY_LENGTH)
        tail_end = reader.offset
        nonce = reader.take(wire.NONCE_LENGTH)
        header_end = reader.offset
        ciphertext = reader.blob(self._max)
        reader.finished()
        if texts[4] != self._code_text:
            _reject("not_addressed_to_us")
        if texts[0] != wire.text(topic):
            _reject("topic_mismatch")
        cache_key = envelope[tail_start:tail_end]
        cipher = self._data_keys.get(cache_key)
        if cipher is None:
            cipher = self._unwrap(
                sealer, period, recipient_key_id, envelope[tail_end - 80 : tail_end]
            )
            if len(self._data_keys) >= _CACHE_LIMIT:
                self._data_keys.clear()
            self._data_keys[cache_key] = cipher
        plaintext = primitives.aead_open(cipher, nonce, ciphertext, envelope[:header_end])
        return texts, context_raw, sealer, plaintext

    def _unwrap(
        self, sealer: bytes, period: bytes, recipient_key_id: bytes, wrapped: bytes
    ) -> primitives.AESGCM:
        private_key = self._private_keys.get(recipient_key_id)
        if private_key is None:
            _reject("unknown_recipient_key")
        period_seconds, period_index = struct.unpack(">IQ", period)
        info = wire.wrap_info(
            sealer, self._code_text, period_seconds, period_index, recipient_key_id
        )
        return primitives.aead(primitives.hpke_unwrap(private_key, wrapped, info))

    def _fields(
        self, reader: wire.Reader, *, all_disclosed: bool
    ) -> tuple[list[Field], list[bytes], list[bytes]]:
        count = reader.u16()
        fields: list[Field] = []
        named_commitments: list[bytes] = []
        disclosed_names: list[bytes] = []
        previous = b""
        for _ in range(count):
            name_text = reader.text_raw()
            name = name_text[2:]
            if not name or len(name) > 255 or name <= previous:
                _reject("field_names_not_ordered")
            previous = name
            flag = reader.byte()
            if flag == 1:
                salt = reader.take(wire.SALT_LENGTH)
                value = reader.blob(self._max)
                digest = wire.commitment(name_text, salt, value)
                fields.append(Field(wire.decode_text(name_text), digest, salt, value))
                disclosed_names.append(name_text)
            elif flag == 0 and not all_disclosed:
                digest = reader.take(wire.HASH_LENGTH)
                fields.append(Field(wire.decode_text(name_text), digest))
            else:
                _reject("bad_field_flag")
            named_commitments.append(name_text + digest)
        return fields, named_commitments, disclosed_names

    def _check_proof(
        self,
        tree: int,
        signer_text: bytes,
        leaf: bytes,
        proof: _ProofTuple,
        signed_at_ms: int,
        now: datetime,
    ) -> None:
        key_id, index, size, path, signature = proof
        root = wire.root_from_path(leaf, index, size, path)
        statement = wire.root_statement(tree, signer_text, key_id, size, root)
        signer = wire.decode_text(signer_text)
        signed_at = datetime.fromtimestamp(signed_at_ms / 1000, tz=UTC)
        key = self._verifying_key(signer, key_id, signed_at, now)
        cache_key = statement + signature
        if cache_key in self._verified_roots:
            return
        primitives.verify_signature(key, signature, statement)
        if len(self._verified_roots) >= _CACHE_LIMIT:
            self._verified_roots.clear()
        self._verified_roots.add(cache_key)

    def _verifying_key(
        self, signer: str, key_id: bytes, signed_at: datetime, now: datetime
    ) -> primitives.Ed25519PublicKey:
        # the directory decides validity every time (cheap); only the key object is cached
        record = self._directory.verification_key(signer, key_id, signed_at, now)
        key = self._verifying_keys.get((signer, key_id))
        if key is None:
            key = primitives.verifying_key(record.public_key)
            self._verifying_keys[(signer, key_id)] = key
        return key

    def _open_submission(self, envelope: bytes, topic: str) -> OpenedMessage:
        texts, context_raw, sealer, plaintext = self._header(envelope, topic, wire.KIND_SUBMISSION)
        if sealer != texts[3]:
            _reject("sealer_is_not_sender")
        reader = wire.Reader(plaintext)
        id_bytes = reader.take(wire.ID_LENGTH)
        timestamp_ms = reader.u64()
        fields, named_commitments, _ = self._fields(reader, all_disclosed=True)
        proof = reader.proof()
        reader.finished()
        leaf = wire.message_leaf(context_raw, id_bytes, timestamp_ms, named_commitments)
        self._check_proof(wire.TREE_MESSAGES, sealer, leaf, proof, timestamp_ms, self._now())
        context = _context(texts)
        return OpenedMessage(
            context=context,
            id_bytes=id_bytes,
            timestamp_ms=timestamp_ms,
            fields=tuple(fields),
            proof=_proof(context.sender, proof),
        )

    def _open_delivery(self, envelope: bytes, topic: str) -> DeliveredMessage:
        texts, context_raw, sealer, plaintext = self._header(envelope, topic, wire.KIND_DELIVERY)
        if sealer != self._gateway_text:
            _reject("sealer_is_not_the_gateway")
        reader = wire.Reader(plaintext)
        origin_start = reader.offset
        origin_texts = [reader.text_raw() for _ in range(_CONTEXT_TEXTS)]
        origin_raw = plaintext[origin_start : reader.offset]
        if origin_texts[1:4] != texts[1:4]:
            _reject("delivery_changes_signal_schema_or_sender")
        if origin_texts[4] != self._gateway_text:
            _reject("origin_not_addressed_to_the_gateway")
        id_bytes = reader.take(wire.ID_LENGTH)
        timestamp_ms = reader.u64()
        fields, named_commitments, disclosed_names = self._fields(reader, all_disclosed=False)
        sender_proof = reader.proof()
        decided_at_ms = reader.u64()
        decision = reader.blob(self._max)
        gateway_proof = reader.proof()
        reader.finished()
        now = self._now()
        leaf = wire.message_leaf(origin_raw, id_bytes, timestamp_ms, named_commitments)
        self._check_proof(
            wire.TREE_MESSAGES, origin_texts[3], leaf, sender_proof, timestamp_ms, now
        )
        decision_leaf = wire.decision_leaf(
            context_raw, sealer, leaf, disclosed_names, decided_at_ms, decision
        )
        self._check_proof(
            wire.TREE_DECISIONS, sealer, decision_leaf, gateway_proof, decided_at_ms, now
        )
        origin = _context(origin_texts)
        gateway = wire.decode_text(sealer)
        return DeliveredMessage(
            context=_context(texts),
            origin=origin,
            gateway=gateway,
            id_bytes=id_bytes,
            timestamp_ms=timestamp_ms,
            fields=tuple(fields),
            decision=decision,
            decided_at_ms=decided_at_ms,
            sender_proof=_proof(origin.sender, sender_proof),
            gateway_proof=_proof(gateway, gateway_proof),
        )

    def _verify_message(self, message: OpenedMessage | DeliveredMessage) -> None:
        origin = message.context if isinstance(message, OpenedMessage) else message.origin
        sender_proof = message.proof if isinstance(message, OpenedMessage) else message.sender_proof
        named_commitments = []
        disclosed_names = []
        for field in message.fields:
            name_text = wire.text(field.name)
            if field.value is not None:
                if field.salt is None:
                    _reject("disclosed_field_without_salt")
                if wire.commitment(name_text, field.salt, field.value) != field.commitment:
                    _reject("field_does_not_match_commitment")
                disclosed_names.append(name_text)
            named_commitments.append(name_text + field.commitment)
        now = self._now()
        leaf = wire.message_leaf(
            context_bytes(origin), message.id_bytes, message.timestamp_ms, named_commitments
        )
        self._check_proof(
            wire.TREE_MESSAGES,
            wire.text(origin.sender),
            leaf,
            _tuple(sender_proof),
            message.timestamp_ms,
            now,
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
                now,
            )


def _tuple(proof: Proof) -> _ProofTuple:
    return proof.key_id, proof.leaf_index, proof.tree_size, proof.path, proof.signature
