"""A partner with its own valid credentials attacks the exchange (issue 17, findings 1, 2, 5).

Each test acts as the partner would: with its own certificate and keys, on the
real broker with mutual TLS and ACLs, against the real gateway and audit indexer.

- Finding 1: a sender pre-writes refusals on its own receipts topic under the
  keys the gateway will give the access records of its next message, hoping
  the indexer skips the gateway's real records as duplicates.
- Finding 2: a replay after a gateway restart, a replay on a partition that
  another gateway instance owns, and a message id reused for other content.
- Finding 5: delivery keys do not link one person across recipients' topics.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from sigex.audit.indexer import IndexerSettings, run_indexer
from sigex.audit.report import build_report
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.clock import FixedClock
from sigex.envelope import OutgoingRecord, SealContext, Sealer
from sigex.envelope.sealing import uuid7
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.audit_events import operation_id
from sigex.exchange.party_events import PartyEventReader
from sigex.exchange.protocol import TRACEPARENT, TraceContext, data_subjects
from sigex.exchange.topology import AUDIT_TOPIC, delivery_topic, ingress_topic, receipts_topic
from sigex.identity import load_directory, load_party
from sigex.schemas.codec import encode_fields
from tests.integration.conftest import SecureExchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, launch_kit
from tests.integration.test_exchange_flow import assert_dead_lettered, record_of

PAYROLL = "payroll.bsn-mismatch"
ADMISSION = "waadi.admission-violation"


def fixed_id_source(prefix: bytes) -> Callable[[int], bytes]:
    """Randomness whose first ten bytes are fixed: with a fixed clock, a chosen message id."""
    return lambda size: prefix + os.urandom(size - len(prefix))


def seal_with_id(
    kit: ExchangeKit, party: str, signal: str, purpose: str, record: dict[str, Any], prefix: bytes
) -> bytes:
    spec = kit.catalogue.signal(signal)
    sealer = Sealer(
        identity=load_party(kit.state_dir, party),
        directory=load_directory(kit.state_dir),
        clock=kit.clock,
        random=fixed_id_source(prefix),
    )
    context = SealContext(
        topic=ingress_topic(signal, party),
        signal=signal,
        schema_fingerprint=spec.fingerprint,
        sender=party,
        recipient="GATEWAY",
        purpose=purpose,
        agreement="ingress",
    )
    return sealer.seal([OutgoingRecord.of(context, encode_fields(spec, record))])[0]


def send(
    kit: ExchangeKit, party: str, topic: str, envelope: bytes, partition: int, trace: TraceContext
) -> int:
    """Produce as ``party`` to one partition; the offset it got."""
    producer = KafkaProducer(acks="all", **kit.exchange.connection(party).options())
    try:
        metadata = producer.send(
            topic,
            value=envelope,
            partition=partition,
            headers=[(TRACEPARENT, trace.header())],
        ).get(timeout=30)
    finally:
        producer.close()
    return int(metadata.offset)


def deliveries_of(kit: ExchangeKit, signal: str, record: dict[str, Any], recipient: str) -> int:
    key = kit.delivery_key(signal, record, recipient)
    return sum(1 for r in kit.read_topic(delivery_topic(signal, recipient), 20) if r.key == key)


def wait_delivered(kit: ExchangeKit, signal: str, record: dict[str, Any], recipient: str) -> None:
    topic = delivery_topic(signal, recipient)
    key = kit.delivery_key(signal, record, recipient)
    assert kit.wait_for(topic, lambda r: r.key == key), f"nothing delivered to {recipient}"


# -- finding 2: replays are refused for good ----------------------------------------------------


def test_a_replay_after_a_gateway_restart_is_refused(secure_exchange: SecureExchange) -> None:
    suffix = uuid.uuid4().hex[:8]
    bsn = fresh_bsn()
    record = record_of(PAYROLL, bsn=bsn, municipality="GM0344")
    topic = ingress_topic(PAYROLL, "UWV")
    first = launch_kit(secure_exchange, suffix=suffix)
    try:
        envelope = first.seal_raw("UWV", PAYROLL, "BRP_TERUGMELDING", record)
        send(first, "UWV", topic, envelope, 0, TraceContext.new())
        wait_delivered(first, PAYROLL, record, "GM0344")
    finally:
        first.close()
    # the same gateway instance comes back: its memory is gone, the ledger is not
    second = launch_kit(secure_exchange, suffix=suffix)
    try:
        replay = TraceContext.new()
        send(second, "UWV", topic, envelope, 1, replay)
        assert_dead_lettered(second, envelope, replay.trace_id, "REPLAYED", bsn)
        assert deliveries_of(second, PAYROLL, record, "GM0344") == 1
        # its access record is kept (not skipped as a duplicate of the first one's)
        refused = second.access_records(
            AUDIT_TOPIC,
            lambda r: r.trace_id == replay.trace_id and r.kind is EventKind.DEAD_LETTERED,
        )
        assert refused and all("REPLAYED" in r.reason_codes for r in refused)
    finally:
        second.close()


def test_a_replay_on_another_instances_partition_is_refused(
    secure_exchange: SecureExchange,
) -> None:
    """Two gateway instances share the ingress partitions; copies land on every partition."""
    suffix = uuid.uuid4().hex[:8]
    one = launch_kit(secure_exchange, suffix=suffix, instance=f"test-{suffix}-a")
    two = launch_kit(secure_exchange, suffix=suffix, instance=f"test-{suffix}-b")
    try:
        bsn = fresh_bsn()
        record = record_of(PAYROLL, bsn=bsn, municipality="GM0599")
        topic = ingress_topic(PAYROLL, "UWV")
        envelope = one.seal_raw("UWV", PAYROLL, "BRP_TERUGMELDING", record)
        send(one, "UWV", topic, envelope, 0, TraceContext.new())
        wait_delivered(one, PAYROLL, record, "GM0599")
        replays = [TraceContext.new() for _ in range(3)]
        for partition, trace in enumerate(replays):
            send(one, "UWV", topic, envelope, partition, trace)
        for trace in replays:
            refused = one.access_records(
                AUDIT_TOPIC,
                lambda r, t=trace.trace_id: r.trace_id == t and r.kind is EventKind.DEAD_LETTERED,
            )
            assert refused and "REPLAYED" in refused[0].reason_codes
        assert deliveries_of(one, PAYROLL, record, "GM0599") == 1
    finally:
        one.close()
        two.close()


def test_a_message_id_reused_for_other_content_is_refused(
    secure_exchange: SecureExchange,
) -> None:
    kit = launch_kit(secure_exchange)
    try:
        prefix = os.urandom(10)
        original = record_of(PAYROLL, bsn=fresh_bsn(), municipality="GM0518")
        other = record_of(PAYROLL, bsn=fresh_bsn(), municipality="GM0518")
        topic = ingress_topic(PAYROLL, "UWV")
        first = seal_with_id(kit, "UWV", PAYROLL, "BRP_TERUGMELDING", original, prefix)
        second = seal_with_id(kit, "UWV", PAYROLL, "BRP_TERUGMELDING", other, prefix)
        assert first[:64] != second[:64] or first != second
        send(kit, "UWV", topic, first, 0, TraceContext.new())
        wait_delivered(kit, PAYROLL, original, "GM0518")
        reuse = TraceContext.new()
        send(kit, "UWV", topic, second, 2, reuse)
        assert_dead_lettered(kit, second, reuse.trace_id, "MESSAGE_ID_REUSED", other["bsn"])
        assert deliveries_of(kit, PAYROLL, other, "GM0518") == 0
        assert deliveries_of(kit, PAYROLL, original, "GM0518") == 1
    finally:
        kit.close()


# -- finding 1: a party cannot keep its deliveries out of the access log ------------------------


def _old_operation_id(message_id: str, kind: EventKind, recipient: str | None, subject: str) -> str:
    """How operation ids were derived before they were namespaced by writer."""
    material = f"{message_id}|{kind.value}|{recipient or '-'}|{subject}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def _ingress_end(kit: ExchangeKit, topic: str, partition: int) -> int:
    consumer = KafkaConsumer(**kit.exchange.connection("ADMIN").options())
    try:
        tp = TopicPartition(topic, partition)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def test_a_sender_cannot_pre_empt_the_gateways_access_records(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    kit = launch_kit(secure_exchange)
    try:
        bsn = fresh_bsn()
        record = record_of(ADMISSION, worker_bsns=[bsn])
        spec = kit.catalogue.signal(ADMISSION)
        # what NLA knows: the subject's audit pseudonym (from the decisions in deliveries it
        # received about this person earlier), its own trace id, message id and ingress offset
        pseudonyms = kit.audit_pseudonyms()
        subjects = sorted(pseudonyms.pseudonym(s) for s in data_subjects(spec, record))
        prefix = os.urandom(10)
        message_id = str(uuid.UUID(bytes=uuid7(int(EXCHANGE_TIME.timestamp() * 1000), prefix)))
        envelope = seal_with_id(kit, "NLA", ADMISSION, "WTTA_TOEZICHT", record, prefix)
        topic = ingress_topic(ADMISSION, "NLA")
        offset = _ingress_end(kit, topic, 0)
        trace = TraceContext.new()
        recipients = [None, "BD", "UWV", "JUSTIS"]
        forged = []
        for subject in subjects:
            for recipient in recipients:
                kind = EventKind.PUBLISHED if recipient is None else EventKind.DELIVERED
                keys = {
                    _old_operation_id(message_id, kind, recipient, subject),
                    operation_id(
                        message_id,
                        kind,
                        recipient,
                        subject,
                        writer="GATEWAY",
                        source=f"{topic}/0/{offset}",
                    ),
                }
                forged += [
                    AccessRecord(
                        trace_id=trace.trace_id,
                        operation_id=key,
                        occurred_at=EXCHANGE_TIME,
                        kind=EventKind.REFUSED_AT_PUBLISH,
                        sender="NLA",
                        recipient=None,
                        signal=ADMISSION,
                        purpose="WTTA_TOEZICHT",
                        legal_basis=None,
                        agreement_id=None,
                        agreement_version=None,
                        policy_version=kit.policy.version,
                        outcome=Outcome.DENY,
                        reason_codes=("NO_AGREEMENT",),
                        disclosed_fields=(),
                        message_id=message_id,
                        subject=subject,
                    )
                    for key in keys
                ]
        producer = KafkaProducer(acks="all", **kit.exchange.connection("NLA").options())
        try:
            for entry in forged:  # first the forged refusals, on NLA's own receipts topic
                producer.send(receipts_topic("NLA"), value=entry.to_bytes()).get(timeout=30)
        finally:
            producer.close()
        assert send(kit, "NLA", topic, envelope, 0, trace) == offset
        wait_delivered(kit, ADMISSION, record, "BD")
        delivered_to = {
            r.recipient
            for r in kit.access_records(
                AUDIT_TOPIC,
                lambda r: r.message_id == message_id and r.kind is EventKind.DELIVERED,
            )
        }
        assert delivered_to, "the gateway wrote no DELIVERED records"
    finally:
        kit.close()

    clock = FixedClock(EXCHANGE_TIME)
    settings = IndexerSettings(
        connection=secure_exchange.connection("AUDIT"),
        group_id=f"sigex-audit-test-{uuid.uuid4().hex[:8]}",
        idle_exit_seconds=6,
    )
    with AccessLogStore.open(str(tmp_path / "audit.sqlite")) as store:
        stats = run_indexer(
            store,
            Ed25519PrivateKey.generate(),
            clock,
            settings,
            party_events=PartyEventReader.for_audit_service(secure_exchange.state_dir, clock),
        )
        assert stats.rejected >= len(forged)
        logged = store.query_all(RecordFilter(message_id=message_id))
        kinds = {(s.record.kind, s.record.recipient) for s in logged}
        assert (EventKind.PUBLISHED, None) in kinds
        for recipient in delivered_to:
            assert (EventKind.DELIVERED, recipient) in kinds
        assert not any(s.record.kind is EventKind.REFUSED_AT_PUBLISH for s in logged)
        # the person's art. 15 report names every delivery
        person = store.query_all(RecordFilter(subject=pseudonyms.pseudonym(bsn)))
        report = build_report(person, EXCHANGE_TIME)
        reported = {d.recipient for d in report.disclosures if d.message_id == message_id}
        assert reported == delivered_to


# -- finding 5: delivery keys do not link a person across recipients ----------------------------


def test_delivery_keys_differ_per_recipient_and_are_not_the_audit_pseudonym(
    secure_exchange: SecureExchange,
) -> None:
    kit = launch_kit(secure_exchange)
    try:
        bsn = fresh_bsn()
        record = record_of(ADMISSION, worker_bsns=[bsn])
        envelope = kit.seal_raw("NLA", ADMISSION, "WTTA_TOEZICHT", record)
        send(kit, "NLA", ingress_topic(ADMISSION, "NLA"), envelope, 0, TraceContext.new())
        pseudonym = kit.audit_pseudonyms().pseudonym(bsn).encode()
        keys = {}
        for recipient in ("BD", "UWV"):
            wait_delivered(kit, ADMISSION, record, recipient)
            keys[recipient] = kit.delivery_key(ADMISSION, record, recipient)
            on_topic = kit.read_topic(delivery_topic(ADMISSION, recipient), 20)
            assert all(pseudonym not in (r.key or b"") for r in on_topic)
            assert all(bsn.encode() not in (r.key or b"") for r in on_topic)
        assert keys["BD"] != keys["UWV"]
    finally:
        kit.close()
