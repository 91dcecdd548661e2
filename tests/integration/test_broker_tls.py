"""The local broker with mutual TLS and the StandardAuthorizer: principals from certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    KafkaAdminClient,
    NewTopic,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError

from sigex.broker import local


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = folder / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, code: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{code} test"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, "00000099000000000001"),
                x509.NameAttribute(NameOID.COMMON_NAME, code),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_path = self.folder / f"{code}.key"
        key_path.write_bytes(_pem_key(key))
        cert_path = self.folder / f"{code}.pem"
        cert_path.write_bytes(cert_pem)
        (self.folder / f"{code}.keystore.pem").write_bytes(
            _pem_key(key) + cert_pem + self.cert.public_bytes(serialization.Encoding.PEM)
        )
        return cert_path, key_path


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, CertificateAuthority]:
    folder = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority(folder)
    for code in ("BROKER", "ADMIN", "ALICE", "BOB"):
        ca.issue(code)
    settings = local.BrokerSettings(
        home=folder / "broker",
        port=free_port(),
        controller_port=free_port(),
        tls=local.TlsSettings(
            keystore_pem=folder / "BROKER.keystore.pem", truststore_pem=ca.ca_path
        ),
    )
    local.start(settings)
    yield settings.bootstrap, ca
    local.stop(settings)


def _tls(ca: CertificateAuthority, code: str) -> dict[str, object]:
    return {
        "security_protocol": "SSL",
        "ssl_cafile": str(ca.ca_path),
        "ssl_certfile": str(ca.folder / f"{code}.pem"),
        "ssl_keyfile": str(ca.folder / f"{code}.key"),
        "ssl_check_hostname": True,
    }


def test_acl_lets_the_granted_principal_read_and_refuses_the_other(
    secure_broker: tuple[str, CertificateAuthority],
) -> None:
    bootstrap, ca = secure_broker
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **_tls(ca, "ADMIN"))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.create_acls(
        [
            ACL(
                "User:ALICE",
                "*",
                ACLOperation.READ,
                ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, topic),
            ),
            ACL(
                "User:ALICE",
                "*",
                ACLOperation.WRITE,
                ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, topic),
            ),
        ]
    )
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **_tls(ca, "ALICE"))
    producer.send(topic, b"hello").get(timeout=30)
    producer.close()

    alice = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        **_tls(ca, "ALICE"),
    )
    assert [m.value for m in alice] == [b"hello"]
    alice.close()

    bob = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bob-group",
        auto_offset_reset="earliest",
        **_tls(ca, "BOB"),
    )
    with pytest.raises(KafkaError) as refused:
        for _ in range(20):
            assert not any(bob.poll(timeout_ms=500).values()), "BOB read a record"
    assert "Authorization" in type(refused.value).__name__
    bob.close()

    intruder = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_block_ms=10_000, **_tls(ca, "BOB")
    )
    with pytest.raises(KafkaError):
        intruder.send(topic, b"forged").get(timeout=30)
    intruder.close()


def test_a_client_without_a_certificate_is_refused(
    secure_broker: tuple[str, CertificateAuthority],
) -> None:
    bootstrap, ca = secure_broker
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=bootstrap,
            security_protocol="SSL",
            ssl_cafile=str(ca.ca_path),
            request_timeout_ms=5_000,
            api_version_auto_timeout_ms=5_000,
        ).list_topics()
