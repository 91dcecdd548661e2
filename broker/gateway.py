"""The policy gateway's Kafka runner: consume ingress, run the core, write one transaction.

:class:`~sigex.broker.gateway_core.PolicyGateway` decides what one poll's worth of
records turns into; :class:`GatewayRunner` writes the deliveries, the audit records,
the dead letters, the replay ledger and the consumed offsets in **one Kafka
transaction**, so a crash at any point either loses the whole batch (it is read again)
or commits all of it, never half.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, ProducerFencedError

from sigex.broker.gateway_core import (
    Delivery,
    GatewayOutput,
    IncomingRecord,
    OutgoingMessage,
    PolicyGateway,
)
from sigex.broker.gateway_progress import DEFAULT_STALL_SECONDS, GatewayProgress
from sigex.broker.gateway_transactions import (
    DEFAULT_STEP_SECONDS,
    BoundedTransactions,
    MessagesRefused,
)
from sigex.broker.replay_ledger import LEDGER_WRITER_HEADER, ReplayLedger
from sigex.consumers.health import GROUP_OPTIONS
from sigex.exchange.protocol import REASONS_HEADER
from sigex.exchange.topology import GATEWAY_GROUP, GATEWAY_TRANSACTIONAL_PREFIX, LEDGER_TOPIC
from sigex.logs import get_logger
from sigex.observability import GatewayMetrics
from sigex.reasons import ReasonCode
from sigex.transport import KafkaConnection

_log = get_logger(__name__)


#: Batches read again while a delivery topic is missing, before its recipients are refused.
MISSING_TOPIC_TRIES = 3
#: Seconds between those tries (the topic may be on its way: a provisioning round).
MISSING_TOPIC_PAUSE = 2.0
#: Times the broker refuses one delivery for what it is (too large) before it is refused.
REFUSED_DELIVERY_TRIES = 2


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
        #: deliveries the broker refused for what they are (too large), by tries
        self._refused: dict[Delivery, int] = {}
        self._stop = threading.Event()
        #: marks this process's ledger records, which its catch-up need not read back;
        #: drawn again whenever admitted messages are withdrawn (see ReplayLedger.catch_up)
        self._ledger_writer = secrets.token_bytes(8)
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
        consumer = self._new_consumer()
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
                if batch and not ledger.catch_up(
                    self._gateway.replay_guard, skip_writer=self._ledger_writer
                ):
                    _log.warning("gateway.ledger_behind", retry="batch read again")
                    self._rewind(consumer, batch)  # decide nothing the ledger cannot vouch for
                elif batch:
                    self._transact(consumer, transactions, batch)
                self._report_lag(consumer)
                if self._progress.needs_renewal and not stop.is_set():
                    consumer = self._renew(consumer)
        finally:
            self._ready.clear()
            ledger.close()
            transactions.close()
            consumer.close()
            _log.info("gateway.stopped", instance=self._instance, processed=self.processed)

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            group_id=self._group,
            # static membership: a restarted instance takes its partitions back at once
            group_instance_id=f"{self._group}-{self._instance}",
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            **GROUP_OPTIONS,
            **self._connection.options(),
        )

    def _renew(self, consumer: KafkaConsumer) -> KafkaConsumer:
        """Replace a consumer that gets nowhere; between transactions, so nothing is in hand.

        The new one, under the same static instance id, takes the partitions back at
        once and reads from the committed offsets: what was not committed comes again.
        """
        _log.warning(
            "gateway.consumer_renewed", instance=self._instance, waiting=self._progress.lag
        )
        self._metrics.consumer_renewed()
        try:
            consumer.close(autocommit=False)
        except Exception as error:  # the old consumer is broken; the new one matters
            _log.warning("gateway.close_failed", error=type(error).__name__)
        renewed = self._new_consumer()
        renewed.subscribe(topics=list(self._topics))
        self._progress.renewed()
        return renewed

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
            self._progress.observe_lag(0)  # nothing waits for this instance
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
        refused = frozenset(d for d, n in self._refused.items() if n >= REFUSED_DELIVERY_TRIES)
        output = self._gateway.process(records, undeliverable=given_up, refused=refused)
        missing = self._missing_topics(consumer, {m.topic for m in output.deliveries})
        if missing - given_up:
            self._withdraw(output)
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
        outgoing = output.all()
        writer = (LEDGER_WRITER_HEADER, self._ledger_writer)
        messages = [
            (m.topic, m.key, m.value, [*m.headers, *([writer] if m.topic == LEDGER_TOPIC else [])])
            for m in outgoing
        ]
        try:
            transactions.commit(messages, offsets, consumer.group_metadata())
        except ProducerFencedError:
            raise
        except KafkaError as error:
            if isinstance(error, MessagesRefused):
                self._count_refusals(outgoing, error)
            _log.warning("gateway.abort", error=type(error).__name__, records=len(records))
            self._metrics.transaction_aborted()
            self._withdraw(output)
            self._known_topics, self._topics_read = set(), float("-inf")  # look again
            transactions.abort()
            self._rewind_to_committed(consumer, batch)
            return
        self._metrics.transaction_committed()
        for delivery in refused:  # decided on: no longer needed
            self._refused.pop(delivery, None)
        if failed:
            self._metrics.delivery_failed(failed)
        self._progress.committed(len(records))
        self.processed += len(records)
        if self._on_commit is not None:
            self._on_commit(len(records))

    def _withdraw(self, output: GatewayOutput) -> None:
        """Admitted messages whose transaction may or may not have committed: forgotten, and
        from now on this process's earlier ledger records are read back like any other's,
        so that whatever did commit is remembered again."""
        self._gateway.withdraw(output)
        self._ledger_writer = secrets.token_bytes(8)

    def _count_refusals(self, outgoing: list[OutgoingMessage], error: MessagesRefused) -> None:
        for index in error.indexes:
            delivery = outgoing[index].delivery_of()
            if delivery is None:  # not a delivery: an audit record or a dead letter
                _log.error("gateway.message_refused", topic=outgoing[index].topic, error=str(error))
                continue
            self._refused[delivery] = tries = self._refused.get(delivery, 0) + 1
            _log.warning(
                "gateway.delivery_refused",
                topic=delivery[3],
                source=f"{delivery[0]}/{delivery[1]}/{delivery[2]}",
                tries=tries,
            )


def _reasons(message: OutgoingMessage) -> str:
    return next((v.decode() for k, v in message.headers if k == REASONS_HEADER), "")
