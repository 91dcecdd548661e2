"""The preflight names what is wrong before any Kafka client waits out its timeout.

Here without a broker: closed ports, TLS files that are missing or not PEM, an
endpoint that is not a Kafka broker, and a TLS endpoint whose certificate another
CA signed. The same failures against the real TLS broker are in
tests/integration/test_connection_failures.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigex.clock import FixedClock
from sigex.config import TlsFiles
from sigex.identity import PartySpec, init_federation
from sigex.preflight import (
    BrokerUnreachable,
    NotAKafkaBroker,
    TlsFileUnusable,
    TlsRefused,
    check_broker,
)

NOW = datetime.now(tz=UTC)
SPECS = (PartySpec("NLA", "Nederlandse Arbeidsinspectie", "00000099000000000001", "supervisor"),)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def federations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours = tmp_path_factory.mktemp("ours")
    theirs = tmp_path_factory.mktemp("theirs")
    init_federation(ours, SPECS, FixedClock(NOW))
    init_federation(theirs, SPECS, FixedClock(NOW))
    return ours / "federation", theirs / "federation"


def _tls(federation: Path) -> TlsFiles:
    party = federation / "parties" / "NLA"
    return TlsFiles(ca=federation / "ca.pem", cert=party / "tls.pem", key=party / "tls.key")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def _serve_once(server: socket.socket, answer: bytes, tls: ssl.SSLContext | None = None) -> None:
    def run() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            try:
                stream = tls.wrap_socket(connection, server_side=True) if tls else connection
                stream.recv(1024)
                stream.sendall(answer)
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=run, daemon=True).start()


def test_a_closed_port_is_named_at_once() -> None:
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as raised:
        check_broker(f"127.0.0.1:{port}", None, timeout=2)
    assert str(raised.value) == f"no broker answered at 127.0.0.1:{port} (connection refused)"
    assert time.monotonic() - started < 2  # refused, not waited for (a generous bound)


def test_every_address_is_tried_and_named() -> None:
    first, second = _closed_port(), _closed_port()
    with pytest.raises(BrokerUnreachable, match=f"127.0.0.1:{first} .*127.0.0.1:{second} "):
        check_broker(f"127.0.0.1:{first},127.0.0.1:{second}", None, timeout=2)


def test_an_unknown_host_and_a_malformed_address() -> None:
    with pytest.raises(BrokerUnreachable, match=r"nohost\.invalid:9092 \(unknown host\)"):
        check_broker("nohost.invalid:9092", None, timeout=2)
    with pytest.raises(BrokerUnreachable, match="not a host:port"):
        check_broker("localhost", None)


def test_a_missing_tls_file_is_named(federations: tuple[Path, Path]) -> None:
    tls = _tls(federations[0])
    for missing in (
        TlsFiles(tls.ca.with_name("gone.pem"), tls.cert, tls.key),
        TlsFiles(tls.ca, tls.cert, tls.key.with_name("gone.key")),
    ):
        with pytest.raises(TlsFileUnusable, match=r"gone\.\w+ is missing"):
            check_broker(f"127.0.0.1:{_closed_port()}", missing)


def test_a_file_that_is_not_pem_is_named(federations: tuple[Path, Path], tmp_path: Path) -> None:
    tls = _tls(federations[0])
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate", encoding="utf-8")
    with pytest.raises(TlsFileUnusable, match="not a PEM CA certificate"):
        check_broker("127.0.0.1:1", TlsFiles(garbage, tls.cert, tls.key))
    other_key = _tls(federations[1]).key
    with pytest.raises(TlsFileUnusable, match="not a PEM certificate with its own private key"):
        check_broker("127.0.0.1:1", TlsFiles(tls.ca, tls.cert, other_key))


def test_something_that_is_not_kafka_is_told_apart(listener: socket.socket) -> None:
    _serve_once(listener, b"HTTP/1.1 400 Bad Request\r\n\r\n")
    port = listener.getsockname()[1]
    with pytest.raises(NotAKafkaBroker, match=f"127.0.0.1:{port} answered, but not as a Kafka"):
        check_broker(f"127.0.0.1:{port}", None, timeout=2)


def test_a_peer_that_hangs_up_on_plaintext_is_asked_whether_it_wants_tls(
    listener: socket.socket,
) -> None:
    _serve_once(listener, b"")
    port = listener.getsockname()[1]
    with pytest.raises(NotAKafkaBroker, match="is it a TLS listener"):
        check_broker(f"127.0.0.1:{port}", None, timeout=2)


def test_a_server_certificate_from_another_ca_is_refused(
    federations: tuple[Path, Path], listener: socket.socket
) -> None:
    ours, theirs = federations
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(theirs / "broker" / "keystore.pem")
    _serve_once(listener, b"", server)
    port = listener.getsockname()[1]
    with pytest.raises(TlsRefused) as raised:
        check_broker(f"127.0.0.1:{port}", _tls(ours), timeout=2)
    message = str(raised.value)
    assert f"TLS handshake with 127.0.0.1:{port} failed" in message
    assert "is that this federation's CA?" in message and str(ours / "ca.pem") in message
