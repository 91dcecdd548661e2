"""The policy gateway: each ingress record becomes deliveries, audit records or a dead letter.

:class:`PolicyGateway` decides what one poll's worth of records turns into
and does no I/O of its own; :class:`GatewayRunner` is the Kafka loop around
it, which writes the deliveries, the audit records, the dead letters and the
consumed offsets in **one Kafka transaction**, so a crash at any point either
loses the whole batch (it is read again) or commits all of it, never half.

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

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, ProducerFencedError

from sigex.broker.gateway_progress import DEFAULT_STALL_SECONDS, GatewayProgress
from sigex.broker.gateway_transactions import DEFAULT_STEP_SECONDS, BoundedTransactions
from sigex.broker.replay_ledger import LedgerEntry, ReplayLedger
from sigex.clock import Clock, SystemClock
from sigex.consumers.health import GROUP_OPTIONS
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
    GATEWAY_GROUP,
    GATEWAY_TRANSACTIONAL_PREFIX,
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
from sigex.schemas.codec import decode_fields, validate_record
from sigex.schemas.errors import SchemaError
from sigex.transport import KafkaConnection

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
            *(OutgoingMessage(LEDGER_TOPIC, e.key(), e.value(), ()) for e in self.admitted),
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
        self._metrics = metrics
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
        self, records: Sequence[IncomingRecord], undeliverable: frozenset[str] = frozenset()
    ) -> GatewayOutput:
        """Decide every record; a record that breaks anything is dead-lettered, never fatal.

        ``undeliverable`` names delivery topics the runner could not write to after
        bounded tries (deleted, or refused by the broker): a recipient behind one is
        refused ``DELIVERY_FAILED`` for that message, the other recipients still get it.
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
        stuck = [p for p in pending if p.forwarding.context.topic in undeliverable]
        for item in stuck:
            self._refuse_for_recipient(item, output, ReasonCode.DELIVERY_FAILED)
        pending = [p for p in pending if p.forwarding.context.topic not in undeliverable]
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
    ) -> list[_Pending]:
        """Park the original ciphertext with reason codes only, and audit it."""
        codes = tuple(sorted(set(codes)))
        for code in codes:
            if self._metrics is not None:
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
            recipient=None,
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
        if self._metrics is not None:
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
            validate_record(spec, fields)
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
        if self._metrics is not None:
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
            if self._metrics is not None:
                self._metrics.delivered(signal, recipient)
        for code in routing.reason_codes:
            if self._metrics is not None:
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


#: Batches read again while a delivery topic is missing, before its recipients are refused.
MISSING_TOPIC_TRIES = 3
#: Seconds between those tries (the topic may be on its way: a provisioning round).
MISSING_TOPIC_PAUSE = 2.0


class GatewayRunner:
    """The Kafka loop: consume ingress, process, produce and commit offsets in one transaction.

    It rides through a broker's loss by itself: every step of a transaction has a
    deadline (:mod:`sigex.broker.gateway_transactions`), a failed transaction is aborted
    (or its producer replaced and fenced) and the batch read again from the committed
    offsets. A delivery topic that does not exist is retried a few times, then its
    recipients are refused ``DELIVERY_FAILED`` (an alarm) and the rest flows. Readiness
    is false while records wait and nothing commits (:mod:`sigex.broker.gateway_progress`).
    """

    def __init__(
        self,
        gateway: PolicyGateway,
        connection: KafkaConnection,
        ingress_topics: Sequence[str],
        *,
        instance: str = "1",
        group: str = GATEWAY_GROUP,
        max_poll_records: int = 500,
        max_batch: int = 2000,
        linger: float = 0.05,
        metrics: GatewayMetrics | None = None,
        on_commit: Callable[[int], None] | None = None,
        step_seconds: float = DEFAULT_STEP_SECONDS,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
    ) -> None:
        self._gateway = gateway
        self._connection = connection
        self._topics = tuple(ingress_topics)
        self._instance = instance
        self._group = group
        self._max_poll_records = max_poll_records
        self._max_batch = max_batch
        self._linger = linger
        self._metrics = metrics or GatewayMetrics.unscraped()
        self._on_commit = on_commit
        self._step_seconds = step_seconds
        self._progress = GatewayProgress(stall_seconds=stall_seconds)
        self._ready = threading.Event()
        self._lag_reported = 0.0
        self._known_topics: set[str] = set()
        self._topics_read = float("-inf")
        self._missing: dict[str, int] = {}
        self._stop = threading.Event()
        self.processed = 0

    @property
    def ready(self) -> bool:
        """Assigned its partitions, and not stalled with records waiting."""
        return self._ready.is_set() and not self._progress.stalled

    @property
    def progress(self) -> GatewayProgress:
        return self._progress

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; the batch in hand is finished (drained) before returning."""
        self._stop = stop
        options = self._connection.options()
        consumer = KafkaConsumer(
            group_id=self._group,
            # static membership: a restarted instance takes its partitions back at once
            group_instance_id=f"{self._group}-{self._instance}",
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            **GROUP_OPTIONS,
            **options,
        )
        transactions = BoundedTransactions(
            options,
            f"{GATEWAY_TRANSACTIONAL_PREFIX}-{self._instance}",
            step_seconds=self._step_seconds,
            stop=stop,
        )
        ledger = ReplayLedger(self._connection)
        try:
            if not transactions.start_when_possible(stop):
                return
            # every message id any instance committed, before deciding anything
            ledger.restore(self._gateway.replay_guard)
            consumer.subscribe(topics=list(self._topics))
            _log.info("gateway.started", instance=self._instance, topics=len(self._topics))
            while not stop.is_set():
                batch = self._gather(consumer)
                if consumer.assignment():
                    self._ready.set()
                if batch and not ledger.catch_up(self._gateway.replay_guard):
                    _log.warning("gateway.ledger_behind", retry="batch read again")
                    self._rewind(consumer, batch)  # decide nothing the ledger cannot vouch for
                elif batch:
                    self._transact(consumer, transactions, batch)
                self._report_lag(consumer)
        finally:
            self._ready.clear()
            ledger.close()
            transactions.close()
            consumer.close()
            _log.info("gateway.stopped", instance=self._instance, processed=self.processed)

    def _gather(self, consumer: KafkaConsumer) -> dict[Any, list[Any]]:
        """One transaction's worth: what is there now, topped up for at most ``linger``.

        Under load a transaction carries up to ``max_batch`` records, so its
        fixed cost (markers on every partition, the offset commit) is shared;
        when traffic is light it waits no longer than the linger time.
        """
        batch: dict[Any, list[Any]] = consumer.poll(timeout_ms=500)
        count = sum(len(messages) for messages in batch.values())
        deadline = time.monotonic() + self._linger
        while batch and count < self._max_batch and time.monotonic() < deadline:
            more = consumer.poll(
                timeout_ms=max(1, int((deadline - time.monotonic()) * 1000)),
                max_records=self._max_batch - count,
            )
            if not more:
                break
            for partition, messages in more.items():
                batch.setdefault(partition, []).extend(messages)
                count += len(messages)
        return batch

    def _report_lag(self, consumer: KafkaConsumer, every_seconds: float = 5.0) -> None:
        """Lag per partition for the metrics, and in total for progress and readiness."""
        if time.monotonic() - self._lag_reported < every_seconds:
            return
        self._lag_reported = time.monotonic()
        assigned = consumer.assignment()
        if not assigned:
            return
        try:
            ends = consumer.end_offsets(list(assigned), timeout_ms=5000)
            lags = {
                tp: max(0, ends.get(tp, 0) - consumer.position(tp, timeout_ms=5000))
                for tp in assigned
            }
        except KafkaError:  # the broker is not answering: the stall clock keeps running
            lags = {}
        for tp, lag in lags.items():
            self._metrics.set_consumer_lag(tp.topic, tp.partition, lag)
        if lags:
            self._progress.observe_lag(sum(lags.values()))
        self._metrics.set_stalled(self._progress.stalled)

    @staticmethod
    def _rewind(consumer: KafkaConsumer, batch: dict[Any, list[Any]]) -> None:
        """Read the batch again: seek each partition still ours back to its first record."""
        assigned = consumer.assignment()
        for tp, messages in batch.items():
            partition = TopicPartition(tp.topic, tp.partition)
            if partition in assigned:  # a revoked partition is re-read by its new owner
                consumer.seek(partition, messages[0].offset)

    def _rewind_to_committed(self, consumer: KafkaConsumer, batch: dict[Any, list[Any]]) -> None:
        """After a failed transaction: go back to what is committed (it may have gone through)."""
        assigned = consumer.assignment()
        for tp, messages in batch.items():
            partition = TopicPartition(tp.topic, tp.partition)
            if partition not in assigned:
                continue
            try:
                committed = consumer.committed(partition, timeout_ms=5000)
            except KafkaError:
                committed = None
            consumer.seek(partition, messages[0].offset if committed is None else committed)

    def _missing_topics(self, consumer: KafkaConsumer, topics: set[str]) -> set[str]:
        """Those of ``topics`` the cluster does not show this gateway (absent, or no ACL)."""
        if topics - self._known_topics and time.monotonic() - self._topics_read >= 1.0:
            try:
                self._known_topics = set(consumer.topics())
            except KafkaError:
                return set()  # cannot tell now: the transaction will say
            self._topics_read = time.monotonic()
        return topics - self._known_topics

    def _transact(
        self,
        consumer: KafkaConsumer,
        transactions: BoundedTransactions,
        batch: dict[Any, list[Any]],
    ) -> None:
        records = [
            IncomingRecord(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
            for messages in batch.values()
            for m in messages
        ]
        if self._missing:  # provisioned again?
            for topic in set(self._missing) - self._missing_topics(consumer, set(self._missing)):
                _log.info("gateway.delivery_topic_back", topic=topic)
                del self._missing[topic]
        given_up = frozenset(t for t, n in self._missing.items() if n >= MISSING_TOPIC_TRIES)
        output = self._gateway.process(records, undeliverable=given_up)
        missing = self._missing_topics(consumer, {m.topic for m in output.deliveries})
        if missing - given_up:
            self._gateway.withdraw(output)
            for topic in missing - given_up:
                self._missing[topic] = self._missing.get(topic, 0) + 1
                tries = self._missing[topic]
                if tries >= MISSING_TOPIC_TRIES:
                    _log.error("gateway.delivery_topic_given_up", topic=topic, tries=tries)
                else:
                    _log.warning("gateway.delivery_topic_missing", topic=topic, tries=tries)
            self._rewind(consumer, batch)
            self._stop.wait(MISSING_TOPIC_PAUSE)
            return
        failed = sum(1 for m in output.dead_letters if _reasons(m) == ReasonCode.DELIVERY_FAILED)
        offsets = {
            tp: OffsetAndMetadata(messages[-1].offset + 1, "", -1) for tp, messages in batch.items()
        }
        messages = [(m.topic, m.key, m.value, list(m.headers)) for m in output.all()]
        try:
            transactions.commit(messages, offsets, consumer.group_metadata())
        except ProducerFencedError:
            raise
        except KafkaError as error:
            _log.warning("gateway.abort", error=type(error).__name__, records=len(records))
            self._metrics.transaction_aborted()
            self._gateway.withdraw(output)
            self._known_topics, self._topics_read = set(), float("-inf")  # look again
            transactions.abort()
            self._rewind_to_committed(consumer, batch)
            return
        self._metrics.transaction_committed()
        if failed:
            self._metrics.delivery_failed(failed)
        self._progress.committed(len(records))
        self.processed += len(records)
        if self._on_commit is not None:
            self._on_commit(len(records))


def _reasons(message: OutgoingMessage) -> str:
    return next((v.decode() for k, v in message.headers if k == REASONS_HEADER), "")
