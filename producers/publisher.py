"""The Publisher: how a partner system sends signals.

For each batch: every record is validated against its schema, exact and
logical types included, and its sealed size is checked against the broker's
limit (a bad record refuses the whole batch before anything is sent, so
nothing of the batch is half-sent);
the policy is asked for every candidate recipient; records no agreement lets
through come back at once as refusals with the decision's reasons (and are
audited, sealed for the audit service); the rest are committed field by field,
signed with one signature per batch, encrypted for the gateway and sent with
an idempotent producer (acks=all) to ``sigex.<signal>.in.<SENDER>``. The Kafka
record key is a keyed pseudonym of the record's key field; headers carry only
the trace context and the envelope version.

A record that carries a ``signal_id`` is sealed under a message id derived
from (sender, signal, purpose, signal_id) (:func:`sigex.envelope.derived_message_id`),
so publishing it again, after a failure or by mistake, gives the gateway the
same id and its replay guard refuses the copy: nothing is delivered twice.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from sigex.clock import Clock, SystemClock
from sigex.config import party_dir
from sigex.envelope import (
    OutgoingRecord,
    SealContext,
    Sealer,
    derived_message_id,
    pseudonym,
    submission_size,
)
from sigex.exchange.access_record import EventKind, Outcome, format_time
from sigex.exchange.audit_events import operation_id
from sigex.exchange.party_events import SEALED_EVENT, SEALED_EVENT_HEADER, seal_party_events
from sigex.exchange.protocol import (
    ENVELOPE_VERSION,
    ENVELOPE_VERSION_HEADER,
    TRACEPARENT,
    TraceContext,
    data_subjects,
    record_key_subject,
)
from sigex.exchange.routing import Routing, route
from sigex.exchange.topology import ingress_topic, receipts_topic
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity.keyfiles import read_private
from sigex.logs import get_logger
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.decide import Reason
from sigex.producers.errors import ProducerError
from sigex.roles import Role
from sigex.schemas.catalogue import Catalogue, SignalSpec
from sigex.schemas.codec import validated_fields
from sigex.schemas.errors import SchemaError
from sigex.transport import KafkaConnection

_log = get_logger(__name__)
MAX_BATCH = 512
RECORD_KEY_FILE = "record-key.secret"
INGRESS_AGREEMENT = "ingress"
SIGNAL_ID_FIELD = "signal_id"
#: the most a Kafka record may hold: kafka-python's max_request_size and, within a few
#: bytes, the broker's default message.max.bytes (1048588)
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
#: room for what Kafka adds around an envelope: record batch header, key, headers
KAFKA_RECORD_OVERHEAD = 512
#: the longest :meth:`Publisher.close` waits for records still in flight
CLOSE_TIMEOUT_SECONDS = 30.0


class RecordTooLarge(ProducerError):
    """Sealed, a record would be larger than the broker takes."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"sealed it would take {size} bytes on the broker, more than its limit of {limit}"
        )


class DuplicateSignalId(ProducerError):
    """Two records carry the same signal_id; the second would be refused as a replay."""

    def __init__(self, first: str) -> None:
        self.first = first
        super().__init__(f"its signal_id is the signal_id of {first}")


class InvalidRecord(ProducerError):
    """A record of a batch does not fit its schema or size; nothing of the batch was sent."""

    def __init__(self, index: int, cause: SchemaError | ProducerError) -> None:
        self.index = index
        self.cause = cause
        super().__init__(f"record {index}: {cause}")


class BrokerUnreachable(ProducerError):
    """The publisher could not connect to the broker; nothing was sent."""

    def __init__(self, bootstrap: str, error: Exception) -> None:
        self.bootstrap = bootstrap
        super().__init__(
            f"cannot publish: the broker at {bootstrap} did not answer "
            f"({type(error).__name__}); nothing was sent"
        )


class PublishFailed(ProducerError):
    """The broker did not acknowledge every record.

    ``sent`` lists the indices the broker did acknowledge before the failure;
    send only the others again (a re-sent record is a new message).
    """

    def __init__(self, message: str, sent: tuple[int, ...]) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True, slots=True)
class PublishedSignal:
    """A record that reached the broker: its trace id and the envelope's message id."""

    index: int
    trace_id: str
    message_id: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RefusedSignal:
    index: int
    reasons: tuple[Reason, ...]

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(sorted({reason.code for reason in self.reasons}))


@dataclass(frozen=True, slots=True)
class PublishResult:
    published: tuple[PublishedSignal, ...] = ()
    refused: tuple[RefusedSignal, ...] = ()


@dataclass
class _Prepared:
    index: int
    record: Mapping[str, object]
    fields: Mapping[str, bytes]
    routing: Routing
    trace: TraceContext = field(default_factory=TraceContext.new)


def ingress_context(spec: SignalSpec, sender: str, purpose: str) -> SealContext:
    """The context a publisher seals its submissions under (for the gateway)."""
    return SealContext(
        topic=ingress_topic(spec.name, sender),
        signal=spec.name,
        schema_fingerprint=spec.fingerprint,
        sender=sender,
        recipient=Role.GATEWAY,
        purpose=purpose,
        agreement=INGRESS_AGREEMENT,
    )


def checked_fields(
    spec: SignalSpec,
    sender: str,
    purpose: str,
    record: Mapping[str, object],
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> dict[str, bytes]:
    """Validate ``record`` (exact types), encode its fields and check its sealed size.

    Raises :class:`~sigex.schemas.errors.SchemaError` or :class:`RecordTooLarge`;
    sends nothing. The size is the envelope's exact length in the largest
    batch, plus room for Kafka's own record overhead.
    """
    fields = validated_fields(spec, record)
    size = submission_size(ingress_context(spec, sender, purpose), fields, MAX_BATCH)
    if size + KAFKA_RECORD_OVERHEAD > max_message_bytes:
        raise RecordTooLarge(size + KAFKA_RECORD_OVERHEAD, max_message_bytes)
    return fields


def signal_uuid(spec: SignalSpec, record: Mapping[str, object]) -> uuid.UUID | None:
    """The record's ``signal_id`` as a UUID (None if the signal has none); validated first."""
    if SIGNAL_ID_FIELD not in spec.field_set:
        return None
    value = record.get(SIGNAL_ID_FIELD)
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value)) if value is not None else None


def load_or_create_record_key(state_dir: Path, party: str) -> bytes:
    """The party's secret for record-key pseudonyms (created 0600 on first use).

    A file that group or others may read is refused (``InsecureKeyFile``), as ssh does.
    """
    path = party_dir(state_dir, party) / RECORD_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return read_private(path)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return read_private(path)


class Publisher:
    """Publishes signals as one party. Not thread-safe; one per thread."""

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: PartyDirectory,
        policy: CompiledPolicy,
        catalogue: Catalogue,
        connection: KafkaConnection,
        record_key: bytes,
        clock: Clock | None = None,
        producer_options: Mapping[str, Any] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._party = identity.code
        self._policy = policy
        self._catalogue = catalogue
        self._record_key = record_key
        self._clock = clock or SystemClock()
        self._max_message_bytes = max_message_bytes
        self._sealer = Sealer(identity=identity, directory=directory, clock=self._clock)
        options: dict[str, Any] = {
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 5,
            # a sealed submission is about 1.3 kB: with Kafka's 16 kB default a batch of 500
            # went out as dozens of produce requests per partition
            "batch_size": 256 * 1024,
            "max_in_flight_requests_per_connection": 5,
            "max_request_size": max_message_bytes,
            **connection.options(),
            **(producer_options or {}),
        }
        try:
            self._producer = KafkaProducer(**options)
        except KafkaError as error:
            raise BrokerUnreachable(connection.bootstrap, error) from error

    @property
    def party(self) -> str:
        return self._party

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Close the producer, waiting at most ``timeout`` s for what is still in flight.

        Records still unsent then were never acknowledged, so :meth:`publish` has
        already raised for them; without a bound, a partition whose leader is gone
        would hold the process here for good.
        """
        self._producer.close(timeout=timeout)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def publish(
        self,
        signal: str,
        purpose: str,
        records: Sequence[Mapping[str, object]],
        trace: TraceContext | None = None,
    ) -> PublishResult:
        """Validate, decide, seal and send a batch; returns what was published and refused.

        Every record is checked (types, identifiers, sealed size, a signal_id
        used twice) before anything is sent: a bad one raises InvalidRecord
        and nothing of the batch leaves. Each record is its own trace, unless
        ``trace`` is given (the caller's W3C trace context): then every record
        is a span of that trace.
        """
        spec = self._catalogue.signal(signal)
        encoded: list[dict[str, bytes]] = []
        seen: dict[uuid.UUID, int] = {}
        for index, record in enumerate(records):
            try:
                encoded.append(
                    checked_fields(spec, self._party, purpose, record, self._max_message_bytes)
                )
                signal_id = signal_uuid(spec, record)
                if signal_id is not None and seen.setdefault(signal_id, index) != index:
                    raise DuplicateSignalId(f"record {seen[signal_id]}")
            except (SchemaError, ProducerError) as error:
                raise InvalidRecord(index, error) from error
        now = self._clock.now()
        prepared = [
            _Prepared(
                index,
                record,
                fields,
                route(self._policy, spec, self._party, purpose, record, now),
                TraceContext.new() if trace is None else trace.child(secrets.token_hex(8)),
            )
            for index, (record, fields) in enumerate(zip(records, encoded, strict=True))
        ]
        accepted = [p for p in prepared if p.routing.allowed]
        refused = [p for p in prepared if not p.routing.allowed]
        published: list[PublishedSignal] = []
        try:
            if refused:  # audited first: a refusal must be on record even if sending fails
                self._audit_refusals(spec, purpose, refused, now)
            for start in range(0, len(accepted), MAX_BATCH):
                published += self._send(spec, purpose, accepted[start : start + MAX_BATCH])
            self._producer.flush()
        except KafkaError as error:
            raise PublishFailed(
                f"the broker did not take the batch: {type(error).__name__}",
                tuple(p.index for p in published),
            ) from error
        _log.info(
            "publish.batch",
            party=self._party,
            signal=signal,
            purpose=purpose,
            published=len(published),
            refused=len(refused),
        )
        return PublishResult(
            tuple(published),
            tuple(RefusedSignal(p.index, _reasons(p.routing)) for p in refused),
        )

    def _send(
        self, spec: SignalSpec, purpose: str, batch: Sequence[_Prepared]
    ) -> list[PublishedSignal]:
        context = ingress_context(spec, self._party, purpose)
        topic = context.topic
        outgoing = [
            OutgoingRecord.of(context, p.fields, self._message_id(spec, purpose, p.record))
            for p in batch
        ]
        sealed = self._sealer.seal_messages(outgoing)
        futures = []
        published = []
        for item, message in zip(batch, sealed, strict=True):
            envelope = message.envelope
            key = pseudonym(self._record_key, record_key_subject(spec, item.record))
            headers = [
                (TRACEPARENT, item.trace.header()),
                (ENVELOPE_VERSION_HEADER, ENVELOPE_VERSION),
            ]
            futures.append(self._producer.send(topic, key=key, value=envelope, headers=headers))
            published.append(
                PublishedSignal(
                    item.index,
                    item.trace.trace_id,
                    str(message.message_id),
                    tuple(r for r, _ in item.routing.allowed),
                )
            )
        self._producer.flush()
        for future in futures:
            future.get(timeout=60)
        return published

    def _message_id(
        self, spec: SignalSpec, purpose: str, record: Mapping[str, object]
    ) -> bytes | None:
        """The id derived from the record's signal_id; None (a fresh UUIDv7) without one."""
        signal_id = signal_uuid(spec, record)
        if signal_id is None:
            return None
        return derived_message_id(self._party, spec.name, purpose, signal_id)

    def _audit_refusals(
        self, spec: SignalSpec, purpose: str, refused: Sequence[_Prepared], now: datetime
    ) -> None:
        topic = receipts_topic(self._party)
        events = []
        for item in refused:
            message_id = f"refused-{item.trace.trace_id}-{item.trace.span_id}"
            event = {
                "v": 1,
                "trace_id": item.trace.trace_id,
                "operation_id": operation_id(
                    message_id, EventKind.REFUSED_AT_PUBLISH, None, "-", writer=self._party
                ),
                "occurred_at": format_time(now),
                "kind": EventKind.REFUSED_AT_PUBLISH.value,
                "sender": self._party,
                "recipient": None,
                "signal": spec.name,
                "purpose": purpose,
                "legal_basis": None,
                "agreement_id": None,
                "agreement_version": None,
                "policy_version": self._policy.version,
                "outcome": Outcome.DENY.value,
                "reason_codes": list(item.routing.reason_codes),
                "disclosed_fields": [],
                "message_id": message_id,
            }
            events.append((event, data_subjects(spec, item.record)))
        envelopes = seal_party_events(
            self._sealer,
            topic=topic,
            signal=spec.name,
            schema_fingerprint=spec.fingerprint,
            sender=self._party,
            purpose=purpose,
            events=events,
        )
        for envelope in envelopes:
            self._producer.send(
                topic, value=envelope, headers=[(SEALED_EVENT_HEADER, SEALED_EVENT)]
            ).get(timeout=60)


def _reasons(routing: Routing) -> tuple[Reason, ...]:
    reasons = list(routing.reasons)
    for _, decision in routing.refused:
        reasons += decision.reasons
    return tuple(reasons)
