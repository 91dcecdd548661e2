"""The audit indexer: consumes access records from Kafka into the Merkle log, and checkpoints.

It reads ``sigex.audit`` (written by the gateway, transactionally) and every
``sigex.receipts.<PARTY>`` topic (written by each party about itself) with
``read_committed``. For each poll it

1. parses each value as a canonical :class:`~sigex.exchange.access_record.AccessRecord`;
   an unreadable value, or a receipt in which a party speaks for another
   party, is logged (topic, partition, offset; never content) and skipped;
2. appends the batch to the store (idempotent on trace id and operation id,
   so a replay after a crash adds nothing);
3. signs a checkpoint covering every record in the store;
4. publishes the latest checkpoint to ``sigex.audit.checkpoints`` once
   ``publish_every`` new records have been added (and when it stops);
5. only then commits the consumed offsets.

When it starts, it reads the last checkpoint on the topic and, when the store
holds more than that checkpoint covers (a run that crashed before publishing),
signs and publishes one at once; when it stops, it publishes whenever the log
grew beyond the last published checkpoint. The consumer is a static member of
its group (a restart after a crash takes its partitions back at once) and is
watched like the subscriber's (:mod:`sigex.consumers.health`): the idle clock
runs only while partitions are assigned, an ``idle_exit_seconds`` exit needs a
lag of 0, and a stalled consumer rejoins; :class:`IndexerStalled` is raised
rather than returning with records waiting.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, RebalanceInProgressError

from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.checkpoint import Checkpoint
from sigex.audit.checkpoint_topic import CheckpointPublisher, last_published_checkpoint
from sigex.audit.errors import AccessLogError, RecordFormatError
from sigex.audit.store import AccessLogStore, AppendResult
from sigex.clock import Clock
from sigex.consumers.health import (
    COMMIT_FAILURES_BEFORE_REJOIN,
    GROUP_OPTIONS,
    ConsumerWatch,
    Step,
    assess,
    partition_lag,
)
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.audit_events import operation_id, writer_of
from sigex.exchange.party_events import SEALED_EVENT, SEALED_EVENT_HEADER, PartyEventReader
from sigex.exchange.protocol import unpack_access_records
from sigex.exchange.topology import (
    AUDIT_GROUP_PREFIX,
    AUDIT_TOPIC,
    CHECKPOINT_TOPIC,
    RECEIPTS_PREFIX,
)
from sigex.logs import get_logger
from sigex.observability import AuditMetrics
from sigex.roles import Role
from sigex.transport import KafkaConnection

_log = get_logger(__name__)


def subscription(audit_topic: str, receipts_prefix: str) -> str:
    """The topic pattern: the audit topic and every party's receipts topic."""
    return rf"^({re.escape(audit_topic)}|{re.escape(receipts_prefix)}[A-Z][A-Z0-9_]*)$"


#: What a party may say about itself in a sealed event: that it refused something,
#: to publish or to accept a delivery that did not open.
_SEALED_KINDS = frozenset({EventKind.REFUSED_AT_PUBLISH, EventKind.RECEIVED})

#: Why a record on a party's receipts topic was rejected (logged, counted as an alarm).
NOT_ITS_OWN = "not_its_own"
FORGED_OPERATION_ID = "forged_operation_id"


@dataclass(frozen=True, slots=True)
class IndexerSettings:
    connection: KafkaConnection
    group_id: str = f"{AUDIT_GROUP_PREFIX}-indexer"
    publish_every: int = 1000
    #: stop after this long without new events; None runs until ``stop`` is set
    idle_exit_seconds: float | None = None
    poll_timeout_ms: int = 500
    max_poll_records: int = 500
    checkpoint_topic: str = CHECKPOINT_TOPIC
    audit_topic: str = AUDIT_TOPIC
    receipts_prefix: str = RECEIPTS_PREFIX
    #: static member id in the group (None: the group id; one indexer per group)
    instance_id: str | None = None
    #: records waiting and nothing fetched for this long: rejoin the group
    stall_seconds: float = 30.0
    #: no partitions for this long (longer than a dead member's session): rejoin the group
    join_seconds: float = 60.0
    #: with ``idle_exit_seconds``, rejoins in a row before giving up with an error
    max_rejoins: int = 3
    #: the log's origin in its checkpoints (the witness policy's; None: the log's own)
    origin: str | None = None

    def __post_init__(self) -> None:
        if not self.group_id.startswith(AUDIT_GROUP_PREFIX):
            raise AccessLogError(f"indexer group id must start with {AUDIT_GROUP_PREFIX!r}")


class IndexerStalled(AccessLogError):
    """Asked to stop when idle, the indexer could not read records that wait for it."""


@dataclass(frozen=True, slots=True)
class IndexerStats:
    appended: int
    skipped: int
    rejected: int
    tree_size: int
    published: int
    #: records refused because the log holds a different record under their key (alarms)
    conflicts: int = 0


def receipt_refusal(
    topic: str, record: AccessRecord, receipts_prefix: str = RECEIPTS_PREFIX
) -> str | None:
    """Why a record may not stand on ``topic``, or None when it may.

    The audit topic is the gateway's alone (ACLs), so what it says stands. A
    party's receipts topic may only carry what that party itself did (its
    receipts, its refusals at publish), and only under the operation id
    derived for that party as the writer: a party cannot take a key that the
    gateway or another party will use, so it can neither forge nor pre-empt
    their records.
    """
    if not topic.startswith(receipts_prefix):
        return None
    party = topic[len(receipts_prefix) :]
    if writer_of(record.kind, record.sender, record.recipient) != party or party == Role.GATEWAY:
        return NOT_ITS_OWN  # deliveries, refusals for a recipient, dead letters: the gateway's
    expected = operation_id(
        record.message_id, record.kind, record.recipient, record.subject, writer=party
    )
    return None if record.operation_id == expected else FORGED_OPERATION_ID


def receipt_allowed(
    topic: str, record: AccessRecord, receipts_prefix: str = RECEIPTS_PREFIX
) -> bool:
    """A party's receipts topic may only carry what that party itself did."""
    return receipt_refusal(topic, record, receipts_prefix) is None


def _sealed_event_records(
    reader: PartyEventReader | None, partition: Any, message: Any, receipts_prefix: str
) -> list[AccessRecord] | None:
    """The records of a sealed party event, [] if unusable, None if the message is not one."""
    headers = dict(message.headers or ())
    if headers.get(SEALED_EVENT_HEADER) != SEALED_EVENT:
        return None
    party = partition.topic[len(receipts_prefix) :]
    if reader is None or not partition.topic.startswith(receipts_prefix):
        return []
    try:
        records = reader.records(message.value or b"", topic=partition.topic, party=party)
    except Exception as error:  # a hostile or broken event must not stop the access log
        _log.warning(
            "audit_sealed_event_refused",
            topic=partition.topic,
            offset=message.offset,
            error=type(error).__name__,
        )
        return []
    if not all(
        r.kind in _SEALED_KINDS
        and r.outcome is Outcome.DENY
        and receipt_allowed(partition.topic, r, receipts_prefix)
        for r in records
    ):
        return []
    return records


def parse_batch(
    batch: dict[Any, list[Any]],
    receipts_prefix: str = RECEIPTS_PREFIX,
    party_events: PartyEventReader | None = None,
) -> tuple[list[AccessRecord], int]:
    """The acceptable records of one poll, in partition order, and how many were rejected.

    A party's refusals at publish arrive sealed for the audit service (see
    :mod:`sigex.exchange.party_events`); ``party_events`` opens them.
    """
    accepted: list[AccessRecord] = []
    rejected = 0
    for partition, messages in batch.items():
        for message in messages:
            where = {"topic": partition.topic, "partition": partition.partition}
            sealed = _sealed_event_records(party_events, partition, message, receipts_prefix)
            if sealed is not None:
                if not sealed:
                    rejected += 1
                    _log.warning("audit_sealed_event_unusable", offset=message.offset, **where)
                accepted += sealed
                continue
            for entry in unpack_access_records(message.value or b""):
                try:
                    record = AccessRecord.from_bytes(entry)
                except RecordFormatError as error:
                    rejected += 1
                    _log.warning(
                        "audit_event_unreadable", offset=message.offset, rule=str(error), **where
                    )
                    continue
                refusal = receipt_refusal(partition.topic, record, receipts_prefix)
                if refusal is not None:
                    rejected += 1
                    _log.error(
                        "audit_receipt_rejected", reason=refusal, offset=message.offset, **where
                    )
                    continue
                accepted.append(record)
    return accepted, rejected


def append_with_alarms(
    store: AccessLogStore,
    records: list[AccessRecord],
    rejected: int,
    metrics: AuditMetrics,
) -> AppendResult:
    """Append a batch; every conflict (a different record under a known key) is an alarm."""
    result = store.append(records)
    for trace_id, operation in result.conflicts:
        # the first record under a key stands; the other is refused, loudly
        _log.error("audit_record_conflict", trace_id=trace_id, operation_id=operation)
    metrics.records_refused(rejected, len(result.conflicts))
    metrics.records_appended(result.appended, result.tree_size)
    return result


#: how long an indexer with an idle limit waits for its first partitions
FIRST_ASSIGNMENT_GRACE_SECONDS = 30.0


def waited_for_topics(started: float, idle_exit_seconds: float | None) -> bool:
    if idle_exit_seconds is None:
        return False
    return time.monotonic() - started > max(idle_exit_seconds, FIRST_ASSIGNMENT_GRACE_SECONDS)


def run_indexer(
    store: AccessLogStore,
    signing_key: Ed25519PrivateKey,
    clock: Clock,
    settings: IndexerSettings,
    stop: threading.Event | None = None,
    party_events: PartyEventReader | None = None,
    metrics: AuditMetrics | None = None,
    on_ready: Callable[[], None] | None = None,
) -> IndexerStats:
    """Index until ``stop`` is set or the topics have been idle for ``idle_exit_seconds``."""
    metrics = metrics or AuditMetrics.unscraped(clock)
    consumer = _new_consumer(settings)
    publisher = CheckpointPublisher(settings.connection, settings.checkpoint_topic)
    appended = skipped = rejected = published = conflicts = 0
    since_publish = 0
    latest: Checkpoint | None = None
    watch = ConsumerWatch(stall_seconds=settings.stall_seconds, join_seconds=settings.join_seconds)
    started = time.monotonic()
    try:
        on_topic = last_published_checkpoint(settings.connection, settings.checkpoint_topic)
        published_size = on_topic.tree_size if on_topic is not None else 0
        # a run before this one may have grown the log and stopped without publishing
        latest = _publish_if_grown(
            store, signing_key, clock, metrics, publisher, published_size, settings.origin
        )
        if latest is not None:
            published, published_size = published + 1, latest.tree_size
        while stop is None or not stop.is_set():
            batch = consumer.poll(timeout_ms=settings.poll_timeout_ms)
            watch.observe(
                assigned=bool(consumer.assignment()),
                fetched=sum(len(m) for m in batch.values()),
            )
            if on_ready is not None and consumer.assignment():
                on_ready()
                on_ready = None
            if not batch:
                step = _idle_step(consumer, watch, settings, started)
                if step is Step.DRAINED:
                    break
                if step is Step.RECOVER:
                    consumer = _rejoin(consumer, watch, settings)
                continue
            records, refused = parse_batch(batch, settings.receipts_prefix, party_events)
            rejected += refused
            result = append_with_alarms(store, records, refused, metrics)
            appended += result.appended
            skipped += result.skipped
            conflicts += len(result.conflicts)
            if result.appended or latest is None:
                latest = _sign(store, signing_key, clock, metrics, settings.origin)
                since_publish += result.appended
            if since_publish >= settings.publish_every:
                publisher.publish(latest)
                published, published_size = published + 1, latest.tree_size
                since_publish = 0
            if not _committed(consumer, watch):
                consumer = _rejoin(consumer, watch, settings)
            _log.info(
                "audit_batch_indexed",
                appended=result.appended,
                replayed=result.skipped,
                rejected=refused,
                tree_size=result.tree_size,
            )
        # every run that grows the log ends with its checkpoint published
        if _publish_if_grown(
            store, signing_key, clock, metrics, publisher, published_size, settings.origin
        ):
            published += 1
    finally:
        consumer.close()
        publisher.close()
    return IndexerStats(appended, skipped, rejected, store.size(), published, conflicts)


def _new_consumer(settings: IndexerSettings) -> KafkaConsumer:
    # the receipts topics are found by pattern: ask for metadata more often than others do
    options = settings.connection.options() | {"metadata_max_age_ms": 5000}
    consumer = KafkaConsumer(
        **options,
        group_id=settings.group_id,
        group_instance_id=settings.instance_id or settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.max_poll_records,
        **GROUP_OPTIONS,
    )
    consumer.subscribe(pattern=subscription(settings.audit_topic, settings.receipts_prefix))
    return consumer


def _committed(consumer: KafkaConsumer, watch: ConsumerWatch) -> bool:
    """Commit what was read; False after a few refusals in a row (time to rejoin)."""
    try:
        consumer.commit()
    except (CommitFailedError, RebalanceInProgressError) as error:
        # the records come again after the rebalance; the store keeps each once
        watch.commit_failures += 1
        _log.warning("audit_commit_deferred", error=type(error).__name__)
        return watch.commit_failures < COMMIT_FAILURES_BEFORE_REJOIN
    watch.commit_failures = 0
    return True


def _idle_step(
    consumer: KafkaConsumer, watch: ConsumerWatch, settings: IndexerSettings, started: float
) -> Step:
    """After an empty poll: go on, stop (drained), or rejoin the group."""
    if not consumer.assignment() and not consumer.subscription():
        # no topic matches: give up after the group has had ample time to form
        waited = waited_for_topics(started, settings.idle_exit_seconds)
        return Step.DRAINED if waited else Step.CONTINUE
    return assess(watch, lambda: _total_lag(consumer), settings.idle_exit_seconds)


def _rejoin(consumer: KafkaConsumer, watch: ConsumerWatch, settings: IndexerSettings) -> Any:
    """A new consumer in the group, or :class:`IndexerStalled` when asked to stop and stuck."""
    lag = _total_lag(consumer) if consumer.assignment() else None
    if settings.idle_exit_seconds is not None and watch.recoveries >= settings.max_rejoins:
        waiting = f"{lag} record(s) wait" if lag else "records may wait"
        raise IndexerStalled(
            f"the audit indexer could not read its topics ({waiting}) after "
            f"{watch.recoveries} rejoin(s) of group {settings.group_id}"
        )
    _log.warning(
        "audit_indexer_rejoin",
        assigned=bool(consumer.assignment()),
        lag=lag,
        idle_seconds=round(watch.idle_seconds, 1),
        waiting_seconds=round(watch.waiting_seconds, 1),
    )
    try:
        consumer.close()
    except Exception as error:  # the old consumer is broken; the new one matters
        _log.warning("audit_indexer_close_failed", error=type(error).__name__)
    watch.restart()
    watch.recoveries += 1
    return _new_consumer(settings)


def _total_lag(consumer: KafkaConsumer) -> int | None:
    lag = partition_lag(consumer)
    return None if lag is None else sum(lag.values())


def _publish_if_grown(
    store: AccessLogStore,
    key: Ed25519PrivateKey,
    clock: Clock,
    metrics: AuditMetrics,
    publisher: CheckpointPublisher,
    published_size: int,
    origin: str | None,
) -> Checkpoint | None:
    """Sign and publish a checkpoint when the log holds more than ``published_size`` records."""
    if store.size() <= published_size:
        return None
    checkpoint = _sign(store, key, clock, metrics, origin)
    publisher.publish(checkpoint)
    return checkpoint


def _sign(
    store: AccessLogStore,
    key: Ed25519PrivateKey,
    clock: Clock,
    metrics: AuditMetrics,
    origin: str | None,
) -> Checkpoint:
    checkpoint = store.checkpoint(key, clock, origin)
    metrics.checkpoint_signed(checkpoint.issued_at)
    return checkpoint
