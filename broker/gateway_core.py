"""The policy gateway's pure core: ingress records in, deliveries, audit records and dead
letters out, with no I/O of its own (no Kafka; :mod:`sigex.broker.gateway` runs it).

For each record:

1. the ingress topic names the sender the broker authenticated
   (``sigex.<signal>.in.<SENDER>``, writable by that party alone);
2. the envelope is opened and the sender's signature checked; the signer
   must be that same party (a forged sender is dead-lettered);
3. the fields are decoded and validated against the schema the envelope names;
4. every candidate recipient is decided with :func:`~sigex.exchange.routing.route`;
5. for each allowed recipient the message is projected to the agreed fields
   and re-sealed for that recipient with the gateway's signed decision;
6. every decision is recorded in the access log, one record per data subject;
7. a record no recipient may have, or that could not be read, goes to the
   dead-letter topic as the original ciphertext with reason codes only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sigex.broker.ledger_entry import LedgerEntry, pack_ledger_entries
from sigex.clock import Clock, SystemClock
from sigex.envelope import (
    EnvelopeError,
    Forwarding,
    OpenedMessage,
    Opener,
    ReplayedMessage,
    ReplayGuard,
    ReusedMessageId,
    SealContext,
    Sealer,
)
from sigex.envelope import project as project_fields
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.audit_events import access_records, operation_id
from sigex.exchange.protocol import (
    ENVELOPE_VERSION,
    ENVELOPE_VERSION_HEADER,
    REASONS_HEADER,
    SOURCE_HEADER,
    TRACEPARENT,
    DeliveryDecision,
    ProtocolError,
    TraceContext,
    data_subjects,
    header_value,
    pack_access_records,
)
from sigex.exchange.pseudonyms import SubjectPseudonyms
from sigex.exchange.routing import disclosed_fields, route
from sigex.exchange.topology import (
    AUDIT_TOPIC,
    DEAD_LETTER_TOPIC,
    LEDGER_TOPIC,
    TOPIC_PREFIX,
    delivery_topic,
)
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.logs import get_logger
from sigex.observability import GatewayMetrics
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.decision import Refused
from sigex.reasons import ReasonCode
from sigex.roles import Role
from sigex.schemas.catalogue import Catalogue, SignalSpec
from sigex.schemas.codec import decode_fields, validate_decoded
from sigex.schemas.errors import SchemaError

_log = get_logger(__name__)


#: How long the gateway remembers message ids (the ingress topics' retention).
DEFAULT_REPLAY_WINDOW = timedelta(days=7)


class _Refused(Exception):
    """Internal: a record the gateway dead-letters, with the reason code."""

    def __init__(self, code: str, message_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message_id = message_id


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class _Pending:
    """A delivery decided but not yet sealed, with what the gateway itself puts around it."""

    forwarding: Forwarding
    source: IncomingRecord
    trace: TraceContext
    key: bytes | None
    delivered: tuple[AccessRecord, ...]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    #: for a delivery: the ingress record it came from (never written, for the runner)
    source: IncomingRecord | None = None

    def delivery_of(self) -> Delivery | None:
        """(ingress topic, partition, offset, delivery topic) of a delivery, else None."""
        if self.source is None:
            return None
        return (self.source.topic, self.source.partition, self.source.offset, self.topic)


#: One delivery of one ingress record: (ingress topic, partition, offset, delivery topic).
Delivery = tuple[str, int, int, str]


@dataclass
class GatewayOutput:
    deliveries: list[OutgoingMessage] = field(default_factory=list)
    audit: list[AccessRecord] = field(default_factory=list)
    dead_letters: list[OutgoingMessage] = field(default_factory=list)
    #: messages this output admitted past the replay guard: written to the replay ledger in
    #: the same transaction, withdrawn from the guard if that transaction is not committed
    admitted: list[LedgerEntry] = field(default_factory=list)

    def all(self) -> list[OutgoingMessage]:
        return [
            *self.deliveries,
            *_audit_messages(self.audit),
            *self.dead_letters,
            *(
                OutgoingMessage(LEDGER_TOPIC, key, value, ())
                for key, value in pack_ledger_entries(self.admitted)
            ),
        ]


def parse_ingress_topic(topic: str) -> tuple[str, str]:
    """(signal, sender) of ``sigex.<signal>.in.<SENDER>``."""
    prefix = f"{TOPIC_PREFIX}."
    head, separator, sender = topic.rpartition(".in.")
    if not separator or not head.startswith(prefix) or not sender:
        raise ProtocolError(f"{topic} is not an ingress topic")
    return head[len(prefix) :], sender


def _source(record: IncomingRecord) -> str:
    """The ingress record an event is about: part of the gateway's operation ids."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def _audit_messages(records: Sequence[AccessRecord]) -> list[OutgoingMessage]:
    """The access records of one batch, packed into as few Kafka records as fit."""
    return [
        OutgoingMessage(AUDIT_TOPIC, None, packed, ())
        for packed in pack_access_records([r.to_bytes() for r in records])
    ]


class PolicyGateway:
    """Turns ingress records into deliveries, audit records and dead letters; no I/O."""

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: PartyDirectory,
        policy: CompiledPolicy,
        catalogue: Catalogue,
        pseudonymiser: SubjectPseudonyms,
        clock: Clock | None = None,
        metrics: GatewayMetrics | None = None,
        replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        if identity.code != Role.GATEWAY:
            raise ValueError("the policy gateway acts as the GATEWAY party")
        self._clock = clock or SystemClock()
        self._policy = policy
        self._catalogue = catalogue
        self._pseudonymiser = pseudonymiser
        self._metrics = metrics or GatewayMetrics.unscraped()
        self._opener = Opener(identity=identity, directory=directory, clock=self._clock)
        self._sealer = Sealer(identity=identity, directory=directory, clock=self._clock)
        self._replay = ReplayGuard(clock=self._clock, window=replay_window)

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    @property
    def replay_guard(self) -> ReplayGuard:
        """The message ids seen in the window (restored from the replay ledger at start)."""
        return self._replay

    def withdraw(self, output: GatewayOutput) -> None:
        """The output was not written (its transaction aborted): its messages may come again."""
        for entry in output.admitted:
            self._replay.withdraw(entry.message_id)

    def process(
        self,
        records: Sequence[IncomingRecord],
        undeliverable: frozenset[str] = frozenset(),
        refused: frozenset[Delivery] = frozenset(),
    ) -> GatewayOutput:
        """Decide every record; a record that breaks anything is dead-lettered, never fatal.

        ``undeliverable`` names delivery topics the runner could not write to after
        bounded tries (deleted, or no longer writable), ``refused`` single deliveries the
        broker refused for what they are (too large): the recipient is refused
        ``DELIVERY_FAILED`` for that message, the other recipients still get it.
        """
        output = GatewayOutput()
        pending: list[_Pending] = []
        for record in records:
            marks = (len(output.audit), len(output.dead_letters), len(output.admitted))
            try:
                pending += self._process_one(record, output)
            except Exception as error:  # fail closed: park it, audit it, keep the stream going
                del output.audit[marks[0] :]
                del output.dead_letters[marks[1] :]
                for entry in output.admitted[marks[2] :]:
                    self._replay.withdraw(entry.message_id)
                del output.admitted[marks[2] :]
                _log.error(
                    "gateway.unexpected",
                    topic=record.topic,
                    offset=record.offset,
                    error=type(error).__name__,
                )
                self._dead_letter(record, output, (ReasonCode.GATEWAY_ERROR,))

        def blocked(item: _Pending) -> bool:
            topic = item.forwarding.context.topic
            source = item.source
            return topic in undeliverable or (
                (source.topic, source.partition, source.offset, topic) in refused
            )

        for item in pending:
            if blocked(item):
                self._refuse_for_recipient(item, output, ReasonCode.DELIVERY_FAILED)
        pending = [item for item in pending if not blocked(item)]
        for item, envelope in self._seal(pending, output):
            output.audit += item.delivered
            output.deliveries.append(
                OutgoingMessage(
                    item.forwarding.context.topic,
                    item.key,
                    envelope,
                    (
                        (TRACEPARENT, item.trace.header()),
                        (ENVELOPE_VERSION_HEADER, ENVELOPE_VERSION),
                    ),
                    item.source,
                )
            )
        return output

    def _seal(self, pending: list[_Pending], output: GatewayOutput) -> list[tuple[_Pending, bytes]]:
        """Seal the batch with one signature; if that fails, one by one, refusing what fails."""
        if not pending:
            return []
        try:
            return list(
                zip(pending, self._sealer.forward([p.forwarding for p in pending]), strict=True)
            )
        except EnvelopeError:
            sealed = []
            for item in pending:
                try:
                    sealed.append((item, self._sealer.forward([item.forwarding])[0]))
                except EnvelopeError:  # e.g. the recipient has no valid encryption key
                    self._refuse_for_recipient(item, output, ReasonCode.RECIPIENT_KEY_UNAVAILABLE)
            return sealed

    # -- one record -----------------------------------------------------------------------------

    def _refuse_for_recipient(self, item: _Pending, output: GatewayOutput, code: str) -> None:
        """This recipient does not get the message: audited as such, the copy dead-lettered."""
        output.audit += [
            replace(
                record,
                kind=EventKind.REFUSED_FOR_RECIPIENT,
                outcome=Outcome.DENY,
                reason_codes=(code,),
                disclosed_fields=(),
                operation_id=operation_id(
                    record.message_id,
                    EventKind.REFUSED_FOR_RECIPIENT,
                    record.recipient,
                    record.subject,
                    writer=Role.GATEWAY,
                    source=_source(item.source),
                ),
            )
            for record in item.delivered
        ]
        self._dead_letter(
            item.source,
            output,
            (code,),
            signal=item.forwarding.context.signal,
            sender=item.forwarding.context.sender,
            purpose=item.forwarding.context.purpose,
            trace=item.trace,
            message_id=None,
            # one dead letter per refused recipient: each its own record and operation id
            recipient=item.forwarding.context.recipient,
        )

    def _dead_letter(
        self,
        record: IncomingRecord,
        output: GatewayOutput,
        codes: Sequence[str],
        *,
        signal: str = "unknown",
        sender: str = "UNKNOWN",
        purpose: str = "unknown",
        trace: TraceContext | None = None,
        message_id: str | None = None,
        subjects: Sequence[str] = (),
        recipient: str | None = None,
    ) -> list[_Pending]:
        """Park the original ciphertext with reason codes only, and audit it (``recipient``:
        the one recipient it was refused for after the decision, if that is why)."""
        codes = tuple(sorted(set(codes)))
        for code in codes:
            self._metrics.refused(code)
        source = _source(record)
        output.dead_letters.append(
            OutgoingMessage(
                DEAD_LETTER_TOPIC,
                None,  # the sender's key is not ours to copy; the source offset identifies it
                record.value,
                ((REASONS_HEADER, ",".join(codes).encode()), (SOURCE_HEADER, source.encode())),
            )
        )
        trace = trace or TraceContext.new()
        message = message_id or f"offset-{record.topic}-{record.partition}-{record.offset}"
        subjects = subjects or (self._pseudonymiser.pseudonym(message),)
        for access in access_records(
            kind=EventKind.DEAD_LETTERED,
            trace_id=trace.trace_id,
            message_id=message,
            occurred_at=self._clock.now(),
            sender=sender if sender.isupper() else "UNKNOWN",
            recipient=recipient,
            signal=signal,
            purpose=purpose,
            policy_version=self._policy.version,
            subjects=subjects,
            outcome=Outcome.DENY,
            reason_codes=codes,
            source=source,
        ):
            output.audit.append(access)
        _log.warning("gateway.dead_letter", topic=record.topic, offset=record.offset, reasons=codes)
        return []

    def _process_one(self, record: IncomingRecord, output: GatewayOutput) -> list[_Pending]:
        try:
            signal, sender = parse_ingress_topic(record.topic)
        except ProtocolError:
            return self._dead_letter(record, output, (ReasonCode.NOT_AN_INGRESS_TOPIC,))
        self._metrics.signal_received(signal)
        try:
            trace = TraceContext.parse(header_value(record.headers, TRACEPARENT))
        except ProtocolError:
            trace = TraceContext.new()
        try:
            opened, spec, fields = self._read(record, signal, sender, output)
        except _Refused as refused:
            return self._dead_letter(
                record,
                output,
                (refused.code,),
                signal=signal,
                sender=sender,
                trace=trace,
                message_id=refused.message_id,
            )
        subjects = tuple(self._pseudonymiser.pseudonym(s) for s in data_subjects(spec, fields))
        return self._decide(record, output, opened, fields, subjects, trace, spec.name)

    def _read(
        self, record: IncomingRecord, signal: str, sender: str, output: GatewayOutput
    ) -> tuple[OpenedMessage, SignalSpec, dict[str, object]]:
        """Open, check the signer, validate the fields, and admit past the replay guard."""
        try:
            opened = self._opener.open_submission(record.value, topic=record.topic)
        except EnvelopeError as error:
            raise _Refused(ReasonCode.ENVELOPE_INVALID) from error
        message_id = str(opened.message_id)
        context = opened.context
        if (
            context.sender != sender
            or context.signal != signal
            or context.recipient != Role.GATEWAY
        ):
            raise _Refused(ReasonCode.SENDER_MISMATCH, message_id)
        if context.purpose not in self._policy.purposes:
            raise _Refused(ReasonCode.UNKNOWN_PURPOSE, message_id)
        try:
            spec = self._catalogue.by_fingerprint(context.schema_fingerprint)
        except SchemaError as error:
            raise _Refused(ReasonCode.UNKNOWN_SCHEMA, message_id) from error
        try:
            if spec.name != signal:
                raise ProtocolError("schema of another signal")
            fields = decode_fields(spec, opened.disclosed)
            validate_decoded(spec, fields)
        except (SchemaError, ProtocolError) as error:
            raise _Refused(ReasonCode.INVALID_RECORD, message_id) from error
        self._admit(record, opened, output)
        return opened, spec, fields

    def _admit(self, record: IncomingRecord, opened: OpenedMessage, output: GatewayOutput) -> None:
        """Admit a message id once: a copy is REPLAYED, other content under it is an alarm."""
        context = opened.context
        digest = self._pseudonymiser.content_digest(
            [
                context.sender.encode(),
                context.signal.encode(),
                context.purpose.encode(),
                context.schema_fingerprint.encode(),
                *(name.encode() for name in opened.names),
                *(value if value is not None else b"\xff" for value in opened.field_values),
            ]
        )
        try:
            self._replay.admit(opened.message_id, opened.timestamp, digest)
        except ReusedMessageId as error:
            _log.error("gateway.message_id_reused", topic=record.topic, offset=record.offset)
            raise _Refused(ReasonCode.MESSAGE_ID_REUSED, str(opened.message_id)) from error
        except ReplayedMessage as error:
            raise _Refused(ReasonCode.REPLAYED, str(opened.message_id)) from error
        output.admitted.append(
            LedgerEntry(opened.message_id, opened.timestamp, digest, _source(record))
        )

    def _decide(
        self,
        record: IncomingRecord,
        output: GatewayOutput,
        opened: OpenedMessage,
        fields: dict[str, object],
        subjects: tuple[str, ...],
        trace: TraceContext,
        signal: str,
    ) -> list[_Pending]:
        context = opened.context
        sender, purpose = context.sender, context.purpose
        subject_key = min(subjects) if subjects else None  # one subject, one partition
        message_id = str(opened.message_id)
        now = self._clock.now()
        started = time.perf_counter()
        routing = route(
            self._policy,
            self._catalogue.by_fingerprint(context.schema_fingerprint),
            sender,
            purpose,
            fields,
            now,
        )
        self._metrics.observe_decision(time.perf_counter() - started)
        common: dict[str, Any] = {
            "trace_id": trace.trace_id,
            "message_id": message_id,
            "occurred_at": now,
            "sender": sender,
            "signal": signal,
            "purpose": purpose,
            "policy_version": self._policy.version,
            "subjects": subjects,
            "source": _source(record),
        }
        audit = (
            access_records(
                kind=EventKind.PUBLISHED, recipient=None, outcome=Outcome.PERMIT, **common
            )
            if routing.allowed
            else []
        )
        forwardings: list[_Pending] = []
        for recipient, decision in routing.decisions:
            if isinstance(decision, Refused):
                audit += access_records(
                    kind=EventKind.REFUSED_FOR_RECIPIENT,
                    recipient=recipient,
                    decision=decision,
                    **common,
                )
                continue
            keep = disclosed_fields(decision, fields)
            token = DeliveryDecision(
                message_id=message_id,
                trace_id=trace.trace_id,
                recipient=recipient,
                purpose=purpose,
                agreement_id=decision.agreement_id,
                agreement_version=decision.agreement_version,
                legal_basis=decision.legal_basis,
                policy_version=self._policy.version,
                fields=tuple(sorted(keep)),
                retention_days=decision.retention_days,
                subjects=subjects,
            )
            delivered = access_records(
                kind=EventKind.DELIVERED,
                recipient=recipient,
                decision=decision,
                disclosed=keep,
                **common,
            )
            forwardings.append(
                _Pending(
                    Forwarding(
                        message=project_fields(opened, keep),
                        context=SealContext(
                            topic=delivery_topic(signal, recipient),
                            signal=signal,
                            schema_fingerprint=context.schema_fingerprint,
                            sender=sender,
                            recipient=recipient,
                            purpose=purpose,
                            agreement=decision.agreement_id,
                        ),
                        decision=token.to_bytes(),
                    ),
                    record,
                    trace,
                    None
                    if subject_key is None
                    else self._pseudonymiser.delivery_key(recipient, subject_key),
                    tuple(delivered),
                )
            )
            self._metrics.delivered(signal, recipient)
        for code in routing.reason_codes:
            self._metrics.refused(code)
        output.audit += audit
        if not forwardings:
            self._dead_letter(
                record,
                output,
                (ReasonCode.NO_LAWFUL_RECIPIENT, *routing.reason_codes),
                signal=signal,
                sender=sender,
                purpose=purpose,
                trace=trace,
                message_id=message_id,
                subjects=subjects,
            )
        return forwardings
