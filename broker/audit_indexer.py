"""The audit indexer: consumes access records from Kafka into the Merkle log, and checkpoints.

It reads ``sigex.audit`` (written by the gateway, transactionally) and every
``sigex.receipts.<PARTY>`` topic (written by each party about itself) with
``read_committed``. For each poll it

1. parses each value as a canonical :class:`~sigex.accesslog.record.AccessRecord`;
   an unreadable value, or a receipt in which a party speaks for another
   party, is logged (topic, partition, offset; never content) and skipped;
2. appends the batch to the store (idempotent on trace id and operation id,
   so a replay after a crash adds nothing);
3. signs a checkpoint covering every record in the store;
4. publishes the latest checkpoint to ``sigex.audit.checkpoints`` once
   ``publish_every`` new records have been added (and when it stops);
5. only then commits the consumed offsets.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer

from broker.audit_events import operation_id, writer_of
from broker.checkpoints import CheckpointPublisher
from broker.party_events import SEALED_EVENT, SEALED_EVENT_HEADER, PartyEventReader
from broker.protocol import unpack_access_records
from broker.topology import (
    AUDIT_GROUP_PREFIX,
    AUDIT_TOPIC,
    CHECKPOINT_TOPIC,
    GATEWAY,
    RECEIPTS_PREFIX,
)
from sigex.accesslog._keys import Ed25519PrivateKey
from sigex.accesslog.checkpoint import Checkpoint
from sigex.accesslog.errors import AccessLogError, RecordFormatError
from sigex.accesslog.record import AccessRecord, EventKind, Outcome
from sigex.accesslog.store import AccessLogStore, AppendResult
from sigex.clock import Clock
from sigex.logs import get_logger
from sigex.observability import AuditMetrics
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

    def __post_init__(self) -> None:
        if not self.group_id.startswith(AUDIT_GROUP_PREFIX):
            raise AccessLogError(f"indexer group id must start with {AUDIT_GROUP_PREFIX!r}")


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
    if writer_of(record.kind, record.sender, record.recipient) != party or party == GATEWAY:
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
    :mod:`broker.party_events`); ``party_events`` opens them.
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
    metrics: AuditMetrics | None,
) -> AppendResult:
    """Append a batch; every conflict (a different record under a known key) is an alarm."""
    result = store.append(records)
    for trace_id, operation in result.conflicts:
        # the first record under a key stands; the other is refused, loudly
        _log.error("audit_record_conflict", trace_id=trace_id, operation_id=operation)
    if metrics is not None:
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
    consumer = KafkaConsumer(
        **settings.connection.options(),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.max_poll_records,
        metadata_max_age_ms=5000,
    )
    publisher = CheckpointPublisher(settings.connection, settings.checkpoint_topic)
    consumer.subscribe(pattern=subscription(settings.audit_topic, settings.receipts_prefix))
    appended = skipped = rejected = published = conflicts = 0
    since_publish = 0
    latest: Checkpoint | None = None
    started = last_event = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            batch = consumer.poll(timeout_ms=settings.poll_timeout_ms)
            if on_ready is not None and consumer.assignment():
                on_ready()
                on_ready = None
            if not batch:
                if not consumer.assignment():
                    # idle time counts once partitions are ours; without any topic to read,
                    # give up after the group has had ample time to form
                    if waited_for_topics(started, settings.idle_exit_seconds):
                        break
                    last_event = time.monotonic()
                    continue
                idle = time.monotonic() - last_event
                if settings.idle_exit_seconds is not None and idle >= settings.idle_exit_seconds:
                    break
                continue
            last_event = time.monotonic()
            records, refused = parse_batch(batch, settings.receipts_prefix, party_events)
            rejected += refused
            result = append_with_alarms(store, records, refused, metrics)
            appended += result.appended
            skipped += result.skipped
            conflicts += len(result.conflicts)
            if result.appended or latest is None:
                latest = store.checkpoint(signing_key, clock)
                since_publish += result.appended
                if metrics is not None:
                    metrics.checkpoint_signed(latest.issued_at)
            if since_publish >= settings.publish_every:
                publisher.publish(latest)
                published += 1
                since_publish = 0
            consumer.commit()
            _log.info(
                "audit_batch_indexed",
                appended=result.appended,
                replayed=result.skipped,
                rejected=refused,
                tree_size=result.tree_size,
            )
        if latest is not None and since_publish:
            publisher.publish(latest)
            published += 1
    finally:
        consumer.close()
        publisher.close()
    return IndexerStats(appended, skipped, rejected, store.size(), published, conflicts)
