"""The values the envelope API takes and returns: frozen, slotted, holding tuples."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sigex.envelope.errors import EnvelopeError

MAX_TEXT_BYTES = 1024
MAX_NAME_BYTES = 255
MESSAGE_ID_BYTES = 16


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise EnvelopeError(f"context {what} must be a non-empty string of at most 1024 bytes")


@dataclass(frozen=True, slots=True)
class SealContext:
    """Where a message travels and why; bound to the envelope and signed, never personal data.

    ``sender`` is always the party whose fields these are (the publisher), also
    in a delivery sealed by the gateway; ``recipient`` is who can decrypt.
    """

    topic: str
    signal: str
    schema_fingerprint: str
    sender: str
    recipient: str
    purpose: str
    agreement: str

    def __post_init__(self) -> None:
        for name in self.__slots__:
            _check_text(getattr(self, name), name)


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to seal: its context and its fields, each already encoded to bytes.

    ``message_id`` (16 bytes) is the id to seal it under; ``None`` lets the
    sealer make a fresh UUIDv7. A publisher that sends the same signal again
    passes :func:`~sigex.envelope.sealing.derived_message_id`, so the copy
    carries the same id and a replay guard refuses it.
    """

    context: SealContext
    fields: tuple[tuple[str, bytes], ...]
    message_id: bytes | None = None

    def __post_init__(self) -> None:
        if self.message_id is not None and (
            not isinstance(self.message_id, bytes) or len(self.message_id) != MESSAGE_ID_BYTES
        ):
            raise EnvelopeError("a message id must be 16 bytes")
        names = [name for name, _ in self.fields]
        if names != sorted(set(names), key=lambda n: n.encode("utf-8")):
            raise EnvelopeError("record fields must have unique names, sorted by their UTF-8 bytes")
        for name, value in self.fields:
            if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise EnvelopeError("a field name must have 1 to 255 bytes")
            if not isinstance(value, bytes):
                raise EnvelopeError(f"field {name!r} must be bytes")

    @classmethod
    def of(
        cls,
        context: SealContext,
        fields: Mapping[str, bytes],
        message_id: bytes | None = None,
    ) -> OutgoingRecord:
        ordered = sorted(fields.items(), key=lambda item: item[0].encode("utf-8"))
        return cls(context=context, fields=tuple(ordered), message_id=message_id)


@dataclass(frozen=True, slots=True)
class Field:
    """A committed field: always its name and commitment; salt and value only when disclosed."""

    name: str
    commitment: bytes
    salt: bytes | None = None
    value: bytes | None = None

    @property
    def disclosed(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class Proof:
    """A signer's batch proof: the leaf's place in the Merkle tree and the signature on its root."""

    signer: str
    key_id: bytes
    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]
    signature: bytes


def _uuid(id_bytes: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=id_bytes)


def _time(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


class _FieldsView:
    """Accessors shared by opened and delivered messages (fields kept as parallel tuples)."""

    __slots__ = ()
    names: tuple[str, ...]
    commitments: tuple[bytes, ...]
    salts: tuple[bytes | None, ...]
    field_values: tuple[bytes | None, ...]
    id_bytes: bytes
    timestamp_ms: int

    @property
    def message_id(self) -> uuid.UUID:
        return _uuid(self.id_bytes)

    @property
    def timestamp(self) -> datetime:
        return _time(self.timestamp_ms)

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(
            Field(name, digest, salt, value)
            for name, digest, salt, value in zip(
                self.names, self.commitments, self.salts, self.field_values, strict=True
            )
        )

    @property
    def disclosed(self) -> dict[str, bytes]:
        """The disclosed fields, name to bytes (a fresh dict)."""
        return {
            name: value
            for name, value in zip(self.names, self.field_values, strict=True)
            if value is not None
        }

    @property
    def withheld(self) -> tuple[str, ...]:
        """Names of the fields the sender committed to but this copy does not carry."""
        return tuple(
            name for name, value in zip(self.names, self.field_values, strict=True) if value is None
        )


def _check_parallel(message: _FieldsView) -> None:
    count = len(message.names)
    if not (len(message.commitments) == len(message.salts) == len(message.field_values) == count):
        raise EnvelopeError("names, commitments, salts and values must line up")


@dataclass(frozen=True, slots=True)
class OpenedMessage(_FieldsView):
    """A submission opened by the gateway (or a projection of it): fields with salts and proof.

    Fields are parallel tuples in the sender's order (by UTF-8 name); a withheld
    field has ``None`` as salt and value but keeps its commitment.
    """

    context: SealContext
    id_bytes: bytes
    timestamp_ms: int
    names: tuple[str, ...]
    commitments: tuple[bytes, ...]
    salts: tuple[bytes | None, ...]
    field_values: tuple[bytes | None, ...]
    proof: Proof

    def __post_init__(self) -> None:
        _check_parallel(self)

    @property
    def sender(self) -> str:
        return self.context.sender


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What the gateway re-seals: a (projected) opened message, the delivery context, a decision.

    ``decision`` is opaque bytes the gateway chooses (agreement, policy version,
    purpose, recipient...); the gateway signs it together with the delivery.
    """

    message: OpenedMessage
    context: SealContext
    decision: bytes

    def __post_init__(self) -> None:
        origin = self.message.context
        if (self.context.sender, self.context.signal, self.context.schema_fingerprint) != (
            origin.sender,
            origin.signal,
            origin.schema_fingerprint,
        ):
            raise EnvelopeError("a delivery keeps the sender, signal and schema of its origin")


@dataclass(frozen=True, slots=True)
class DeliveredMessage(_FieldsView):
    """A delivery opened and verified by its recipient (use case 4)."""

    context: SealContext
    origin: SealContext
    gateway: str
    id_bytes: bytes
    timestamp_ms: int
    names: tuple[str, ...]
    commitments: tuple[bytes, ...]
    salts: tuple[bytes | None, ...]
    field_values: tuple[bytes | None, ...]
    decision: bytes
    decided_at_ms: int
    sender_proof: Proof
    gateway_proof: Proof

    def __post_init__(self) -> None:
        _check_parallel(self)

    @property
    def decided_at(self) -> datetime:
        return _time(self.decided_at_ms)

    @property
    def sender(self) -> str:
        return self.origin.sender
