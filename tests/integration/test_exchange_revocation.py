"""Revocation reaches the broker: a revoked certificate is refused, its successor works.

The attacker is whoever kept a copy of a party's TLS key and certificate; it
connects with a plain Kafka client, as the party itself could before.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from sigex.broker.provision import provision
from sigex.cli.keys import keys
from sigex.clock import FixedClock
from sigex.config import TlsFiles
from sigex.consumers.errors import AccessRefused
from sigex.consumers.subscriber import Subscriber
from sigex.exchange.topology import delivery_topic, principal, subscriber_group_prefix
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.schemas.catalogue import load_catalogue
from sigex.transport import KafkaConnection
from tests.integration.conftest import PROVISIONED_AT, SecureExchange

#: a municipality no other integration test revokes or depends on the keys of
PARTY = "GM1894"
DELIVERIES = delivery_topic("payroll.bsn-mismatch", PARTY)


def _consumer(connection: KafkaConnection) -> KafkaConsumer:
    consumer = KafkaConsumer(
        group_id=f"{subscriber_group_prefix(PARTY)}revocation-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **connection.options(),
    )
    # assign(): fetches go straight to the partitions, so a refusal is an error, not silence
    consumer.assign([TopicPartition(DELIVERIES, p) for p in range(3)])
    return consumer


def _poll(consumer: KafkaConsumer) -> None:
    for _ in range(6):
        consumer.poll(timeout_ms=500)


def _refused(error: KafkaError) -> bool:
    return "Authorization" in type(error).__name__ or "Authorization" in str(error)


def test_a_revoked_certificate_is_refused_and_its_successor_reads(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    federation = secure_exchange.state_dir / "federation"
    folder = federation / "parties" / PARTY
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("tls.pem", "tls.key"):
        shutil.copy2(folder / name, kept / name)
    old = KafkaConnection(
        secure_exchange.bootstrap,
        TlsFiles(ca=federation / "ca.pem", cert=kept / "tls.pem", key=kept / "tls.key"),
    )
    generation = load_directory(secure_exchange.state_dir).party(PARTY).generation

    connected = _consumer(old)  # a session opened before the revocation
    try:
        _poll(connected)  # the old certificate reads its party's deliveries
        result = CliRunner().invoke(
            keys,
            [
                "revoke",
                PARTY,
                "--state-dir",
                str(secure_exchange.state_dir),
                "--bootstrap",
                secure_exchange.bootstrap,
            ],
        )
        assert result.exit_code == 0, result.output
        assert load_directory(secure_exchange.state_dir).party(PARTY).generation == generation + 1
        # the session that was open is cut at its next fetch ...
        with pytest.raises(KafkaError) as refused:
            _poll(connected)
        assert _refused(refused.value)
    finally:
        connected.close()
    # ... and a new one with the old certificate gets nothing either
    again = _consumer(old)
    try:
        with pytest.raises(KafkaError) as refused:
            _poll(again)
        assert _refused(refused.value)
    finally:
        again.close()
    # ... and the sigex Subscriber with it says so, instead of draining nothing forever
    with (
        pytest.raises(AccessRefused, match="does not authorize GM1894"),
        Subscriber(
            identity=load_party(secure_exchange.state_dir, PARTY),
            directory=load_directory(secure_exchange.state_dir),
            catalogue=load_catalogue(),
            connection=old,
            purposes=("BRP_TERUGMELDING", "LAA_SIGNAAL"),
            policy=load_policy(),
            name=f"revoked-{uuid.uuid4().hex[:6]}",
            clock=FixedClock(PROVISIONED_AT),
            refused_seconds=2.0,
        ) as revoked,
    ):
        revoked.drain(lambda _signal: None, idle_seconds=10.0)
    # the party's new certificate, from the same folder as always, works
    current = _consumer(secure_exchange.connection(PARTY))
    try:
        _poll(current)
    finally:
        current.close()
    admin = secure_exchange.admin()
    try:
        # `keys revoke --bootstrap` compiled the ACLs for now; put back the exchange's moment
        report = provision(admin, secure_exchange.topology())
        assert not any(a.principal == principal(PARTY, generation) for a in report.acls_created)
    finally:
        admin.close()


def test_a_subscriber_keeps_running_when_an_agreement_window_closes(
    secure_exchange: SecureExchange,
) -> None:
    """BD reads payroll and Waadi deliveries; when the payroll agreement ends (provisioned for
    2028), its subscriber loses that topic, says so, and goes on with the other; when the ACL
    is back, so is the topic."""
    catalogue = load_catalogue()
    subscriber = Subscriber(
        identity=load_party(secure_exchange.state_dir, "BD"),
        directory=load_directory(secure_exchange.state_dir),
        catalogue=catalogue,
        connection=secure_exchange.connection("BD"),
        purposes=("SUWI64_FISC", "WTTA_TOEZICHT"),
        policy=load_policy(),
        signals=("payroll.bsn-mismatch", "waadi.admission-violation"),
        name=f"window-{uuid.uuid4().hex[:6]}",
        clock=FixedClock(PROVISIONED_AT),
        resubscribe_seconds=1.0,
    )
    payroll = delivery_topic("payroll.bsn-mismatch", "BD")
    waadi = delivery_topic("waadi.admission-violation", "BD")
    admin = secure_exchange.admin()
    try:
        for _ in range(20):
            subscriber.poll(lambda _signal: None, timeout_ms=500)
            if subscriber.assigned:
                break
        assert subscriber.subscribed == {payroll, waadi}
        provision(admin, secure_exchange.topology(at=datetime(2028, 6, 1, tzinfo=UTC)))
        for _ in range(10):
            subscriber.poll(lambda _signal: None, timeout_ms=500)
        assert subscriber.subscribed == {waadi}
        # the window opens again (provisioned for the exchange's moment): the topic comes back
        provision(admin, secure_exchange.topology())
        for _ in range(10):
            subscriber.poll(lambda _signal: None, timeout_ms=500)
        assert subscriber.subscribed == {payroll, waadi}
    finally:
        provision(admin, secure_exchange.topology())
        admin.close()
        subscriber.close()
