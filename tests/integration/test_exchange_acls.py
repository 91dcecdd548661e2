"""The broker itself refuses what no agreement allows, to a raw client that bypasses sigex."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from sigex.broker.provision import ProvisioningFailed, bootstrap_brokers, provision, stray_acls
from sigex.exchange.topology import AclSpec, Operation, Pattern, Resource, principal
from sigex.policies.compiler import load_policy
from tests.integration.conftest import REPO, SecureExchange

PAYROLL_IN_UWV = "sigex.payroll.bsn-mismatch.in.UWV"
PAYROLL_OUT_NLA = "sigex.payroll.bsn-mismatch.out.NLA"
WAADI_IN_NLA = "sigex.waadi.admission-violation.in.NLA"


def _produce(exchange: SecureExchange, party: str, topic: str) -> None:
    producer = KafkaProducer(
        acks="all",
        max_block_ms=15_000,
        retries=0,
        enable_idempotence=False,
        **exchange.connection(party).options(),
    )
    try:
        producer.send(topic, b"raw bytes from a client that bypasses sigex").get(timeout=30)
    finally:
        producer.close()


def _read(exchange: SecureExchange, party: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(
        group_id=f"sigex.{party}.raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        **exchange.connection(party).options(),
    )
    # assign() fetches the partitions directly, so a refusal surfaces as an error
    # (a subscription would just get no assignment).
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    try:
        values: list[bytes] = []
        for _ in range(10):
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


def _refused(error: KafkaError) -> bool:
    return "Authorization" in type(error).__name__ or "Authorization" in str(error)


def test_a_sender_with_an_agreement_may_write_its_ingress(secure_exchange: SecureExchange) -> None:
    _produce(secure_exchange, "UWV", PAYROLL_IN_UWV)


def test_a_party_cannot_write_a_signal_it_has_no_agreement_for(
    secure_exchange: SecureExchange,
) -> None:
    with pytest.raises(KafkaError) as refused:
        _produce(secure_exchange, "GM0363", PAYROLL_IN_UWV)
    assert _refused(refused.value)


def test_a_party_cannot_write_another_senders_ingress(secure_exchange: SecureExchange) -> None:
    with pytest.raises(KafkaError) as refused:
        _produce(secure_exchange, "JUSTIS", WAADI_IN_NLA)
    assert _refused(refused.value)


def test_a_party_reads_its_own_deliveries(secure_exchange: SecureExchange) -> None:
    assert isinstance(_read(secure_exchange, "NLA", PAYROLL_OUT_NLA), list)


def test_a_party_cannot_read_another_partys_deliveries(secure_exchange: SecureExchange) -> None:
    with pytest.raises(KafkaError) as refused:
        _read(secure_exchange, "GM0363", PAYROLL_OUT_NLA)
    assert _refused(refused.value)


def test_an_agreement_removed_removes_its_acls(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    reduced = tmp_path / "policies"
    shutil.copytree(REPO / "policies", reduced)
    (reduced / "agreements" / "waadi.yaml").unlink()
    nla_writes_waadi = AclSpec(
        principal("NLA"), Resource.TOPIC, WAADI_IN_NLA, Pattern.LITERAL, Operation.WRITE
    )
    admin = secure_exchange.admin()
    try:
        report = provision(admin, secure_exchange.topology(load_policy(reduced)))
        assert nla_writes_waadi in report.acls_deleted
        with pytest.raises(KafkaError) as refused:
            _produce(secure_exchange, "NLA", WAADI_IN_NLA)
        assert _refused(refused.value)

        restored = provision(admin, secure_exchange.topology())
        assert nla_writes_waadi in restored.acls_created
        again = provision(admin, secure_exchange.topology())
        assert not again.changed, "provisioning twice must change nothing"
    finally:
        provision(admin, secure_exchange.topology())
        admin.close()
    _produce(secure_exchange, "NLA", WAADI_IN_NLA)


def test_provisioning_removes_stray_acls_on_sigex_resources(
    secure_exchange: SecureExchange,
) -> None:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    stray = ACL(
        principal("NLA"),
        "*",
        ACLOperation.ALL,
        ACLPermissionType.ALLOW,
        ResourcePattern(ResourceType.TOPIC, PAYROLL_OUT_NLA.replace("NLA", "BD")),
    )
    admin = secure_exchange.admin()
    try:
        admin.create_acls([stray])
        for _ in range(150):  # ACL changes reach the authorizer asynchronously
            if stray_acls(admin):
                break
            time.sleep(0.2)
        report = provision(admin, secure_exchange.topology())
        assert report.stray_acls_deleted == 1
        with pytest.raises(KafkaError) as refused:
            _read(secure_exchange, "NLA", PAYROLL_OUT_NLA.replace("NLA", "BD"))
        assert _refused(refused.value)
    finally:
        admin.close()


JUSTIS_IN = "sigex.waadi.admission-violation.in.JUSTIS"
RVIG_PAYROLL_OUT = "sigex.payroll.bsn-mismatch.out.RVIG"


def test_justis_cannot_write_its_ingress_before_its_agreements_start(
    secure_exchange: SecureExchange,
) -> None:
    """Its agreements start on 2027-01-01: provisioned for a moment before, JUSTIS is refused."""
    admin = secure_exchange.admin()
    try:
        # today as this is written; a fixed moment, so the test means the same next year
        before = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
        provision(admin, secure_exchange.topology(at=before))
        with pytest.raises(KafkaError) as refused:
            _produce(secure_exchange, "JUSTIS", JUSTIS_IN)
        assert _refused(refused.value)
    finally:
        provision(admin, secure_exchange.topology())  # back to the exchange's moment
        admin.close()
    _produce(secure_exchange, "JUSTIS", JUSTIS_IN)  # in force at the exchange's moment


def test_rvig_cannot_read_a_delivery_topic_only_a_basis_under_review_backs(
    secure_exchange: SecureExchange,
) -> None:
    """The topic exists (the gateway's subscription does not follow the calendar); no ACL."""
    with pytest.raises(KafkaError) as refused:
        _read(secure_exchange, "RVIG", RVIG_PAYROLL_OUT)
    assert _refused(refused.value)
    admin = secure_exchange.admin()
    try:
        assert RVIG_PAYROLL_OUT in {t["name"] for t in admin.describe_topics([RVIG_PAYROLL_OUT])}
    finally:
        admin.close()


def test_provisioning_waits_for_every_broker_the_bootstrap_list_names(
    secure_exchange: SecureExchange,
) -> None:
    # one broker runs; a bootstrap list naming three means two are still starting: topics
    # made now would keep a replication factor of 1 for good, so nothing is made
    assert bootstrap_brokers("kafka-1:9092, kafka-2:9092,kafka-3:9092,kafka-1:9092") == 3
    admin = secure_exchange.admin()
    try:
        with pytest.raises(ProvisioningFailed, match="1 of the 3 brokers"):
            provision(admin, secure_exchange.topology(), expected_brokers=3)
        assert provision(admin, secure_exchange.topology(), expected_brokers=1).brokers == 1
    finally:
        admin.close()
