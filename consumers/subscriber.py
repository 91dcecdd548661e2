"""The Subscriber: how a partner system receives signals.

It reads its own delivery topics (``sigex.<signal>.out.<PARTY>``) with
``read_committed``, so it never sees a gateway transaction that was aborted.
For each delivery it checks both signatures (the gateway's decision and the
sender's commitments over the disclosed fields), decrypts, checks that the
decision names this party and a purpose it declared, checks the policy once
more itself, and hands the application a typed record. When the application's
handler returns, the acknowledgement is written as a receipt for the access
log, and only then is the offset committed: delivery to the application is at
least once, and a duplicate message id is dropped before it reaches it.

The message ids an application already holds (read back from its store after a
restart, ``already_handed``) count as handed over, so a crash between handing
over and committing does not hand a signal over twice. The subscriber watches
its own lag (:mod:`sigex.consumers.health`): holding partitions with signals
waiting and nothing fetched for ``stall_seconds``, or no partitions for
``join_seconds``, it rejoins its group with a new consumer; asked to drain
(:meth:`Subscriber.drain`), it returns only when nothing is left to take, and
raises :class:`SubscriberStalled` rather than return with signals waiting.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import (
    CommitFailedError,
    RebalanceInProgressError,
    TopicAuthorizationFailedError,
)

from sigex.clock import Clock, SystemClock
from sigex.consumers.errors import (
    AccessRefused,
    ConsumerError,
    DeliveryRefused,
    SubscriberStalled,
)
from sigex.consumers.health import (
    COMMIT_FAILURES_BEFORE_REJOIN,
    GROUP_OPTIONS,
    ConsumerWatch,
    Step,
    assess,
    partition_lag,
)
from sigex.envelope import DeliveredMessage, EnvelopeError, Opener, Sealer
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome, format_time
from sigex.exchange.audit_events import Basis, access_records
from sigex.exchange.party_events import SEALED_EVENT, SEALED_EVENT_HEADER, seal_party_events
from sigex.exchange.protocol import (
    DeliveryDecision,
    ProtocolError,
    TraceContext,
    pack_access_records,
)
from sigex.exchange.topology import (
    delivery_topic,
    receipts_topic,
    routes_in_force,
    subscriber_group_prefix,
)
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.logs import get_logger
from sigex.observability import SubscriberMetrics
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.decide import DecisionRequest, decide
from sigex.reasons import ReasonCode
from sigex.schemas.catalogue import Catalogue
from sigex.schemas.codec import decode_fields
from sigex.schemas.errors import SchemaError
from sigex.transport import KafkaConnection

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedSignal:
    """What the application gets: the disclosed fields, typed, and why it may have them."""

    message_id: str
    trace_id: str
    signal: str
    sender: str
    recipient: str
    purpose: str
    agreement_id: str
    agreement_version: int
    legal_basis: str
    policy_version: str
    retention_days: int
    decided_at: datetime
    sent_at: datetime
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class FetchedSignal:
    """A delivery opened, checked and receipted as received; not yet acknowledged."""

    signal: ReceivedSignal
    topic: str
    partition: int
    offset: int
    decision: DeliveryDecision


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """What :meth:`Subscriber.fetch` read: lawful signals, and the positions it settled itself
    (refused or duplicate deliveries, already on record)."""

    signals: tuple[FetchedSignal, ...] = ()
    settled: tuple[tuple[str, int, int], ...] = ()


@dataclass
class Settling:
    """Acknowledgements on their way (:meth:`Subscriber.begin_settle`): receipts sent, then
    the commit of the positions they allow."""

    signals: list[FetchedSignal]
    sends: list[Any]
    offsets: dict[Any, Any]
    commit: Any = None


Handler = Callable[[ReceivedSignal], None]
#: Makes what the handler wrote durable; called before a batch's offsets are committed.
Sync = Callable[[], None]


def delivery_topics_for(
    party: str,
    catalogue: Catalogue,
    policy: CompiledPolicy | None,
    signals: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """The delivery topics ``party`` reads for ``signals`` (all signals by default).

    Raises :class:`ConsumerError` for an unknown signal, and when no agreement can
    ever deliver any of them to ``party``: a subscriber that could only wait forever.
    """
    wanted = set(signals) if signals is not None else set(catalogue.names())
    unknown = sorted(wanted - set(catalogue.names()))
    if unknown:
        raise ConsumerError(f"unknown signal {unknown[0]} (see 'sigex policy routes')")
    if policy is not None:
        receivable = {a.signal for a in policy.agreements if party in a.possible_recipients}
        if not wanted & receivable:
            raise ConsumerError(
                f"{party} receives no {' or '.join(sorted(wanted))} deliveries under "
                "any agreement (see 'sigex policy routes')"
            )
    return tuple(sorted(delivery_topic(s, party) for s in wanted))


class Subscriber:
    """Receives signals as one party, for the purposes it declares."""

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: PartyDirectory,
        catalogue: Catalogue,
        connection: KafkaConnection,
        purposes: Iterable[str],
        policy: CompiledPolicy | None = None,
        signals: Iterable[str] | None = None,
        name: str = "inbox",
        clock: Clock | None = None,
        dedup_capacity: int = 100_000,
        instance: str | None = None,
        already_handed: Iterable[str] = (),
        stall_seconds: float = 30.0,
        join_seconds: float = 60.0,
        metrics: SubscriberMetrics | None = None,
        resubscribe_seconds: float = 60.0,
        refused_seconds: float = 20.0,
    ) -> None:
        """``instance`` makes this a static member of its group (a restart with the same
        instance takes the partitions back at once); ``already_handed`` are message ids
        the application already holds (dropped as duplicates). When the broker shows none
        of the topics the agreements in force give this party for ``refused_seconds``,
        :class:`AccessRefused` is raised (a revoked certificate, or no ACLs)."""
        self._party = identity.code
        self._catalogue = catalogue
        self._policy = policy
        self._purposes = frozenset(purposes)
        if not self._purposes:
            raise ConsumerError("a subscriber declares at least one purpose")
        self._clock = clock or SystemClock()
        self._opener = Opener(identity=identity, directory=directory, clock=self._clock)
        self._sealer = Sealer(identity=identity, directory=directory, clock=self._clock)
        self._topics = delivery_topics_for(self._party, catalogue, policy, signals)
        self._options = connection.options()
        self._group = f"{subscriber_group_prefix(self._party)}{name}"
        self._instance = instance
        self._metrics = metrics or SubscriberMetrics.unscraped()
        self._watch = ConsumerWatch(stall_seconds=stall_seconds, join_seconds=join_seconds)
        self._lag_reported = float("-inf")
        self._consumer = self._new_consumer()
        # receipts go out packed (up to 200 per Kafka record, about 1.4 kB each): room for
        # a poll's worth in one batch
        self._producer = KafkaProducer(
            enable_idempotence=True, acks="all", batch_size=512 * 1024, **self._options
        )
        self._resubscribe_seconds = resubscribe_seconds
        self._subscribed_at = 0.0
        self._refused_seconds = refused_seconds
        self._refused_since: float | None = None
        self.subscribe()  # at once: a subscription made on the first poll rejoins the group
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedup_capacity = dedup_capacity
        for message_id in already_handed:
            self._remember(message_id)
        #: held by the application before this process started: receipts may be missing
        self._restored = set(self._seen)
        self.acknowledged = 0
        self.refused = 0
        self.duplicates = 0
        self.rejoins = 0

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            group_id=self._group,
            group_instance_id=self._instance,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **GROUP_OPTIONS,
            **self._options,
        )

    @property
    def topics(self) -> tuple[str, ...]:
        return self._topics

    @property
    def subscribed(self) -> frozenset[str]:
        """The delivery topics subscribed to now: those of :attr:`topics` the broker lets it see."""
        return frozenset(self._consumer.subscription() or ())

    @property
    def assigned(self) -> bool:
        """True once the group has given this subscriber its partitions, and at once when no
        topic of it is in force now (there is nothing to wait for)."""
        return bool(self._consumer.assignment()) or not self._consumer.subscription()

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def subscribe(self) -> None:
        """Subscribe to those of :attr:`topics` the broker lets this party see now.

        The broker's ACLs follow the agreements in force, so the set changes
        when a window opens or closes; :meth:`poll` calls this again every
        ``resubscribe_seconds`` and when the broker refuses a topic.
        """
        existing = set(self._consumer.topics())
        visible = [t for t in self._topics if t in existing]
        if visible:
            self._consumer.subscribe(topics=visible)
        elif self._consumer.subscription():
            self._consumer.unsubscribe()  # none in force now (e.g. before its agreements start)
        self._subscribed_at = time.monotonic()
        self._check_access(visible)

    def _topics_in_force(self) -> frozenset[str]:
        """The delivery topics of :attr:`topics` some agreement in force now delivers to."""
        if self._policy is None:
            return frozenset(self._topics)
        now = self._clock.now()
        return frozenset(
            delivery_topic(signal, recipient)
            for _sender, signal, recipient in routes_in_force(self._policy, now)
            if recipient == self._party
        ) & frozenset(self._topics)

    def _check_access(self, visible: list[str]) -> None:
        """Raise :class:`AccessRefused` once the broker has hidden every topic in force from
        this party for ``refused_seconds`` (a moment's difference at a window's edge, while
        the ACLs are compiled again, is not a refusal)."""
        in_force = self._topics_in_force()
        if visible or not in_force:
            self._refused_since = None
            return
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
            _log.warning("subscriber.topics_hidden", party=self._party, topics=len(in_force))
        elif now - self._refused_since >= self._refused_seconds:
            raise AccessRefused(
                f"the broker does not authorize {self._party} to read any of its "
                f"{len(in_force)} delivery topic(s) in force (e.g. {min(in_force)}) for "
                f"{self._refused_seconds:.0f} s: is this certificate revoked or of an old key "
                "generation, or were the ACLs not provisioned ('sigex provision')?"
            )

    def poll(self, handler: Handler, timeout_ms: int = 1000, sync: Sync | None = None) -> int:
        """Read one batch; hand each lawful delivery to ``handler``; commit after receipts.

        ``sync`` (if given) runs after the handler and before anything is
        committed: what the handler wrote must be durable when it returns.
        When the handler raises, what it acknowledged before is receipted and
        committed, the partition is rewound to the signal it failed on, and the
        error goes to the caller: the next poll offers that signal again.
        """
        if (
            not self._consumer.subscription()
            or time.monotonic() - self._subscribed_at >= self._resubscribe_seconds
        ):
            self.subscribe()
        if not self._consumer.subscription():
            time.sleep(timeout_ms / 1000)  # nothing this party may read now; wait as poll would
            # idle, not stalled: nothing is owed; unless the broker hides what is in force
            self._watch.observe(assigned=self._refused_since is None, fetched=0)
            return 0
        try:
            batch = self._consumer.poll(timeout_ms=timeout_ms)
        except TopicAuthorizationFailedError as refused:
            # an agreement's window closed (or the party was revoked): go on with the rest
            _log.warning("subscriber.topic_refused", party=self._party, detail=str(refused))
            self.subscribe()
            return 0
        self._watch.observe(
            assigned=bool(self._consumer.assignment()),
            fetched=sum(len(messages) for messages in batch.values()),
        )
        handled = 0
        receipts: list[AccessRecord] = []
        sealed: list[bytes] = []
        done: dict[TopicPartition, OffsetAndMetadata] = {}
        handed: list[str] = []
        failure: BaseException | None = None
        try:
            for partition, messages in batch.items():
                for message in messages:
                    handled += self._one(message, handler, receipts, sealed, handed)
                    done[partition] = OffsetAndMetadata(message.offset + 1, "", -1)
        except BaseException as error:  # the application's handler failed: offer it again
            failure = error
        try:
            if sync is not None and handed:
                sync()
            self._acknowledge(receipts, sealed, done)
        except BaseException:
            # Nothing of this batch is on record: offer all of it again, handed over or not.
            for message_id in handed:
                self._seen.pop(message_id, None)
            self._rewind(batch, {})
            raise
        if failure is not None:
            self._rewind(batch, done)
            raise failure
        return handled

    def _rewind(
        self, batch: dict[Any, list[Any]], done: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        """Seek each partition still ours back to its first signal not acknowledged."""
        assigned = self._consumer.assignment()
        for partition, messages in batch.items():
            if partition in assigned:
                position = done[partition].offset if partition in done else messages[0].offset
                self._consumer.seek(partition, position)

    def _acknowledge(
        self,
        receipts: list[AccessRecord],
        sealed: list[bytes],
        offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> None:
        """Write the receipts, then commit the offsets they cover (never the other way round).

        Every receipt's send is confirmed before the commit: a refused write raises
        here, and the caller offers the batch again.
        """
        topic = receipts_topic(self._party)
        futures = [
            self._producer.send(topic, value=packed)
            for packed in pack_access_records([record.to_bytes() for record in receipts])
        ]
        futures += [
            self._producer.send(
                topic, value=envelope, headers=[(SEALED_EVENT_HEADER, SEALED_EVENT)]
            )
            for envelope in sealed
        ]
        for future in futures:
            future.get(timeout=60)
        if offsets:
            try:
                self._consumer.commit(offsets)
                self._watch.commit_failures = 0
            except (CommitFailedError, RebalanceInProgressError) as error:
                # The group is rebalancing: these signals come again after the rejoin, and
                # the message-id check drops them (their receipts are already written).
                self._watch.commit_failures += 1
                _log.warning(
                    "subscriber.commit_deferred", party=self._party, error=type(error).__name__
                )

    def run(
        self,
        handler: Handler,
        stop: threading.Event,
        max_messages: int | None = None,
        sync: Sync | None = None,
    ) -> None:
        """Receive until ``stop`` is set (or ``max_messages``), rejoining when stalled."""
        self._loop(handler, stop, max_messages=max_messages, sync=sync, idle_exit=None)

    def drain(
        self,
        handler: Handler,
        *,
        idle_seconds: float,
        stop: threading.Event | None = None,
        max_messages: int | None = None,
        sync: Sync | None = None,
        max_rejoins: int = 3,
    ) -> None:
        """Take everything waiting, then return.

        Returns once this subscriber holds its partitions, has read up to their
        end and nothing new came for ``idle_seconds`` (the clock starts when the
        partitions are assigned). Raises :class:`SubscriberStalled` when
        ``max_rejoins`` rejoins in a row did not get it going again.
        """
        self._loop(
            handler,
            stop or threading.Event(),
            max_messages=max_messages,
            sync=sync,
            idle_exit=idle_seconds,
            max_rejoins=max_rejoins,
        )

    def _loop(
        self,
        handler: Handler,
        stop: threading.Event,
        *,
        max_messages: int | None,
        sync: Sync | None,
        idle_exit: float | None,
        max_rejoins: int | None = None,
    ) -> None:
        while not stop.is_set():
            self.poll(handler, timeout_ms=500, sync=sync)
            if max_messages is not None and self.acknowledged >= max_messages:
                return
            step = self.health(idle_exit)
            if step is Step.DRAINED:
                return
            if step is Step.RECOVER:
                if max_rejoins is not None and self._watch.recoveries >= max_rejoins:
                    raise SubscriberStalled(self._stall_description())
                self.rejoin()

    # -- health ----------------------------------------------------------------------------------

    def lag(self) -> dict[TopicPartition, int] | None:
        """Signals waiting per assigned partition (None while a rebalance hides it)."""
        return partition_lag(self._consumer)

    def health(self, idle_exit: float | None = None) -> Step:
        """Go on, drained (idle ``idle_exit`` seconds with nothing waiting), or rejoin."""
        self._report_lag()
        if self._watch.commit_failures >= COMMIT_FAILURES_BEFORE_REJOIN:
            return Step.RECOVER

        def waiting() -> int | None:
            lag = self.lag()
            return None if lag is None else sum(lag.values())

        return assess(self._watch, waiting, idle_exit)

    def rejoin(self) -> None:
        """Close the consumer and join the group afresh (what was not committed comes again)."""
        _log.warning(
            "subscriber.rejoin",
            party=self._party,
            assigned=bool(self._consumer.assignment()),
            idle_seconds=round(self._watch.idle_seconds, 1),
            waiting_seconds=round(self._watch.waiting_seconds, 1),
            commit_failures=self._watch.commit_failures,
        )
        try:
            self._consumer.close()
        except Exception as error:  # the old consumer is broken; the new one matters
            _log.warning("subscriber.close_failed", party=self._party, error=type(error).__name__)
        self._consumer = self._new_consumer()
        self.subscribe()
        self._watch.restart()
        self._watch.recoveries += 1
        self._watch.commit_failures = 0
        self.rejoins += 1
        self._metrics.rejoined()

    def _stall_description(self) -> str:
        lag = self.lag() if self._consumer.assignment() else None
        topics = ", ".join(self._topics)
        if lag:
            return (
                f"{sum(lag.values())} signal(s) wait on {topics} and this subscriber could not "
                f"take them after {self._watch.recoveries} rejoin(s) of its group"
            )
        return (
            f"the group gave this subscriber no partitions of {topics} after "
            f"{self._watch.recoveries} rejoin(s); signals may be waiting"
        )

    def _report_lag(self, every_seconds: float = 5.0) -> None:
        if time.monotonic() - self._lag_reported < every_seconds:
            return
        self._lag_reported = time.monotonic()
        lag = self.lag()
        if lag is not None:
            self._metrics.set_lag({(tp.topic, tp.partition): n for tp, n in lag.items()})

    # -- one delivery ----------------------------------------------------------------------------

    def _one(
        self,
        message: Any,
        handler: Handler,
        receipts: list[AccessRecord],
        sealed: list[bytes],
        handed: list[str],
    ) -> int:
        admitted = self._admit(message, receipts, sealed)
        if admitted is None:
            return 0
        received, decision = admitted
        receipts += self._receipts(EventKind.RECEIVED, received, decision)
        handed.append(received.message_id)
        handler(received)
        receipts += self._receipts(EventKind.ACKNOWLEDGED, received, decision)
        self._remember(received.message_id)
        self.acknowledged += 1
        return 1

    def _admit(
        self, message: Any, receipts: list[AccessRecord], sealed: list[bytes]
    ) -> tuple[ReceivedSignal, DeliveryDecision] | None:
        """Open and check one delivery; None when it is refused or a duplicate (on record)."""
        try:
            delivered = self._opener.open_delivery(message.value, topic=message.topic)
            decision = DeliveryDecision.from_bytes(delivered.decision)
        except (EnvelopeError, ProtocolError):
            self._refuse_unreadable(message, sealed)
            return None
        try:
            received = self._check(delivered, decision)
        except DeliveryRefused as refusal:
            self._refuse(message, refusal.code, decision, receipts, delivered)
            return None
        if received.message_id in self._seen:
            self.duplicates += 1
            if received.message_id in self._restored:
                # handed over before a crash, perhaps without its receipts: write them
                # (again); the access log keeps each event once
                self._restored.discard(received.message_id)
                receipts += self._receipts(EventKind.RECEIVED, received, decision)
                receipts += self._receipts(EventKind.ACKNOWLEDGED, received, decision)
            return None
        return received, decision

    # -- pulling: hand over now, acknowledge later ----------------------------------------------

    @property
    def partitions(self) -> frozenset[tuple[str, int]]:
        """The (topic, partition) pairs the group gives this subscriber now."""
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def fetch(
        self, timeout_ms: int = 500, max_records: int = 500, *, hold: bool = False
    ) -> FetchedBatch:
        """Read one batch and open it, without handing anything over or committing.

        For an application that takes signals now and acknowledges them later
        (the partner node). Each lawful delivery comes back as a
        :class:`FetchedSignal` with its RECEIVED receipt already written;
        deliveries refused or already acknowledged are settled here (on record)
        and listed by position, so that the caller can commit past them.
        ``hold`` keeps the group membership alive while reading nothing (the
        application has as many signals open as it can take): not a stall.
        Acknowledge with :meth:`begin_settle` and :meth:`advance`.
        """
        if (
            not self._consumer.subscription()
            or time.monotonic() - self._subscribed_at >= self._resubscribe_seconds
        ):
            self.subscribe()
        if not self._consumer.subscription():
            time.sleep(timeout_ms / 1000)
            self._watch.observe(assigned=self._refused_since is None, fetched=0)
            return FetchedBatch()
        assigned = self._consumer.assignment()
        if hold:
            self._consumer.pause(*assigned)
        else:
            self._consumer.resume(*self._consumer.paused())
        try:
            batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except TopicAuthorizationFailedError as refused:
            _log.warning("subscriber.topic_refused", party=self._party, detail=str(refused))
            self.subscribe()
            return FetchedBatch()
        fetched = sum(len(messages) for messages in batch.values())
        if hold:
            self._watch.held()
        else:
            self._watch.observe(assigned=bool(self._consumer.assignment()), fetched=fetched)
        receipts: list[AccessRecord] = []
        sealed: list[bytes] = []
        signals: list[FetchedSignal] = []
        settled: list[tuple[str, int, int]] = []
        for partition, messages in batch.items():
            for message in messages:
                admitted = self._admit(message, receipts, sealed)
                if admitted is None:
                    settled.append((partition.topic, partition.partition, message.offset))
                    continue
                received, decision = admitted
                receipts += self._receipts(EventKind.RECEIVED, received, decision)
                signals.append(
                    FetchedSignal(
                        received, partition.topic, partition.partition, message.offset, decision
                    )
                )
        self._acknowledge(receipts, sealed, {})
        return FetchedBatch(tuple(signals), tuple(settled))

    def begin_settle(
        self,
        acknowledged: Iterable[FetchedSignal],
        positions: Mapping[tuple[str, int], int],
    ) -> Settling:
        """Send the ACKNOWLEDGED receipts of ``acknowledged``; commit ``positions`` after them.

        Nothing waits here: :meth:`advance` moves the settlement on (the commit is
        sent only once every receipt is confirmed) and says when it is done.
        ``positions`` maps (topic, partition) to the next offset to read; those of
        partitions this subscriber no longer holds are not committed (their new
        holder reads them again).
        """
        signals = list(acknowledged)
        topic = receipts_topic(self._party)
        receipts = [
            receipt.to_bytes()
            for item in signals
            for receipt in self._receipts(EventKind.ACKNOWLEDGED, item.signal, item.decision)
        ]
        held = self._consumer.assignment()
        return Settling(
            signals=signals,
            sends=[self._producer.send(topic, value=p) for p in pack_access_records(receipts)],
            offsets={
                tp: OffsetAndMetadata(offset, "", -1)
                for (topic_name, partition), offset in positions.items()
                if (tp := TopicPartition(topic_name, partition)) in held
            },
        )

    def advance(self, settling: Settling) -> bool:
        """Move ``settling`` on without blocking; True once its receipts are on record and
        its commit answered. Raises what a receipt's write raised: nothing is committed then.

        A commit the group refuses (it is rebalancing) counts as done, as in :meth:`poll`:
        the signals come again after the rejoin and the message-id check drops them.
        """
        if settling.commit is None:
            if not all(send.is_done for send in settling.sends):
                return False
            for send in settling.sends:
                if send.failed():
                    raise send.exception
            if settling.offsets:
                settling.commit = self._consumer.commit_async(settling.offsets)
                return False
        elif not settling.commit.is_done:
            return False
        elif settling.commit.failed():
            self._watch.commit_failures += 1
            _log.warning(
                "subscriber.commit_deferred",
                party=self._party,
                error=type(settling.commit.exception).__name__,
            )
        else:
            self._watch.commit_failures = 0
        for item in settling.signals:
            self._remember(item.signal.message_id)
        self.acknowledged += len(settling.signals)
        return True

    def _check(self, delivered: DeliveredMessage, decision: DeliveryDecision) -> ReceivedSignal:
        context = delivered.context
        if decision.recipient != self._party or context.recipient != self._party:
            raise DeliveryRefused(ReasonCode.NOT_FOR_THIS_PARTY)
        if decision.purpose != context.purpose or decision.purpose not in self._purposes:
            raise DeliveryRefused(ReasonCode.PURPOSE_NOT_DECLARED)
        if decision.message_id != str(delivered.message_id):
            raise DeliveryRefused(ReasonCode.ENVELOPE_INVALID)
        try:
            spec = self._catalogue.by_fingerprint(context.schema_fingerprint)
            fields = decode_fields(spec, delivered.disclosed)
        except SchemaError as error:
            raise DeliveryRefused(ReasonCode.INVALID_RECORD) from error
        if set(fields) - set(decision.fields):
            raise DeliveryRefused(ReasonCode.POLICY_DISAGREES)
        if self._policy is not None:
            carried = spec.classifications_of(frozenset(fields))
            check = decide(
                DecisionRequest(
                    delivered.sender, spec.name, self._party, decision.purpose, carried
                ),
                self._policy,
                delivered.decided_at,
            )
            if not check.allowed or not set(fields) <= check.fields:
                raise DeliveryRefused(ReasonCode.POLICY_DISAGREES)
        return ReceivedSignal(
            message_id=decision.message_id,
            trace_id=decision.trace_id,
            signal=spec.name,
            sender=delivered.sender,
            recipient=self._party,
            purpose=decision.purpose,
            agreement_id=decision.agreement_id,
            agreement_version=decision.agreement_version,
            legal_basis=decision.legal_basis,
            policy_version=decision.policy_version,
            retention_days=decision.retention_days,
            decided_at=delivered.decided_at,
            sent_at=delivered.timestamp,
            fields=fields,
        )

    def _receipts(
        self, kind: EventKind, received: ReceivedSignal, decision: DeliveryDecision
    ) -> list[AccessRecord]:
        """Receipts of a signal handed over, under the basis of the gateway's signed decision."""
        return access_records(
            kind=kind,
            trace_id=received.trace_id,
            message_id=received.message_id,
            occurred_at=self._clock.now(),
            sender=received.sender,
            recipient=self._party,
            signal=received.signal,
            purpose=received.purpose,
            policy_version=received.policy_version,
            subjects=decision.subjects,
            outcome=Outcome.PERMIT,
            reason_codes=(ReasonCode.ACCEPTED,),
            disclosed=received.fields.keys(),
            basis=Basis(decision.legal_basis, decision.agreement_id, decision.agreement_version),
        )

    def _refuse(
        self,
        message: Any,
        code: str,
        decision: DeliveryDecision | None,
        receipts: list[AccessRecord],
        delivered: DeliveredMessage | None = None,
    ) -> None:
        self.refused += 1
        _log.warning("subscriber.refused", party=self._party, topic=message.topic, reason=code)
        if decision is None or delivered is None:
            return  # nothing trustworthy to attribute; the log line above is the trace
        receipts += access_records(
            kind=EventKind.RECEIVED,
            trace_id=decision.trace_id,
            message_id=decision.message_id,
            occurred_at=self._clock.now(),
            sender=delivered.sender,
            recipient=self._party,
            signal=delivered.context.signal,
            purpose=decision.purpose,
            policy_version=decision.policy_version,
            subjects=decision.subjects,
            outcome=Outcome.DENY,
            reason_codes=(code,),
        )

    def _refuse_unreadable(self, message: Any, sealed: list[bytes]) -> None:
        """A delivery that does not open: refused, and on record sealed for the audit service.

        Nothing inside can be trusted, so the event names the topic and offset
        (the ciphertext stays in the delivery topic for its retention) and no subject.
        """
        self.refused += 1
        _log.warning(
            "subscriber.refused",
            party=self._party,
            topic=message.topic,
            reason=ReasonCode.ENVELOPE_INVALID,
        )
        signal = message.topic.removeprefix("sigex.").rsplit(".out.", 1)[0]
        trace = TraceContext.new()
        event = {
            "v": 1,
            "trace_id": trace.trace_id,
            "operation_id": trace.span_id,
            "occurred_at": format_time(self._clock.now()),
            "kind": EventKind.RECEIVED.value,
            "sender": "UNKNOWN",
            "recipient": self._party,
            "signal": signal,
            "purpose": "unknown",
            "legal_basis": None,
            "agreement_id": None,
            "agreement_version": None,
            "policy_version": "unknown",
            "outcome": Outcome.DENY.value,
            "reason_codes": [ReasonCode.ENVELOPE_INVALID],
            "disclosed_fields": [],
            "message_id": f"offset-{message.topic}-{message.partition}-{message.offset}",
        }
        known = signal in self._catalogue
        sealed += seal_party_events(
            self._sealer,
            topic=receipts_topic(self._party),
            signal=signal,
            schema_fingerprint=self._catalogue.signal(signal).fingerprint if known else "unknown",
            sender=self._party,
            purpose="unknown",
            events=[(event, [])],
        )

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        while len(self._seen) > self._dedup_capacity:
            self._seen.popitem(last=False)
