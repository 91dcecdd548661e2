"""The audit API: mutual TLS, the CN as principal, visibility per party, a filter on every query."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.api import AuditApi, make_server, principal_of, server_tls_context
from sigex.audit.checkpoint import Checkpoint
from sigex.audit.console.consultations import ConsultationLog
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.tls import api_identity
from sigex.clock import FixedClock
from sigex.exchange.access_record import EventKind
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.merkle import leaf_hash, verify_inclusion

from .conftest import BACKENDS, PEOPLE, RecordFactory

KINDS = {"NLA": "authority", "GM0363": "municipality", "BD": "authority", "AUDITOR": "auditor"}


@pytest.fixture
def api(
    tmp_path: Path,
    make_record: RecordFactory,
    pseudonymiser: SubjectPseudonymiser,
    signing_key: object,
) -> AuditApi:
    location = str(tmp_path / "audit.sqlite")
    with AccessLogStore.open(location) as store:
        store.append(
            [
                make_record(bsn=PEOPLE[0]),
                make_record(bsn=PEOPLE[0], recipient="NLA", purpose="SUWI64_ARB"),
                make_record(bsn=PEOPLE[1], sender="UWV", recipient="BD"),
            ]
        )
        store.checkpoint(signing_key, FixedClock())  # type: ignore[arg-type]
    return AuditApi(lambda: AccessLogStore.open(location), KINDS, pseudonymiser)


def _indexes(body: dict[str, object]) -> list[int]:
    records = body["records"]
    assert isinstance(records, list)
    return [int(r["leaf_index"]) for r in records]


def test_a_party_sees_only_its_records_and_an_auditor_all(
    api: AuditApi, pseudonymiser: SubjectPseudonymiser
) -> None:
    subject = pseudonymiser.pseudonym(PEOPLE[0])
    assert _indexes(api.handle("AUDITOR", "GET", f"/v1/records?subject={subject}", b"").body) == [
        0,
        1,
    ]
    assert _indexes(api.handle("NLA", "GET", f"/v1/records?subject={subject}", b"").body) == [1]
    assert _indexes(
        api.handle("GM0363", "GET", "/v1/records?signal=laa.frequent-mover", b"").body
    ) == [0]
    assert _indexes(api.handle("BD", "GET", "/v1/records?sender=UWV", b"").body) == [2]
    assert _indexes(api.handle("NLA", "GET", "/v1/records?sender=UWV", b"").body) == []


def test_every_query_needs_a_filter_and_a_known_principal(api: AuditApi) -> None:
    refused = api.handle("AUDITOR", "GET", "/v1/records", b"")
    assert refused.status == 400 and "at least one filter" in refused.body["error"]
    assert api.handle("AUDITOR", "GET", "/v1/records?limit=5", b"").status == 400
    assert api.handle("AUDITOR", "GET", "/v1/records?colour=red", b"").status == 400
    assert api.handle("SOMEONE", "GET", "/v1/records?sender=UWV", b"").status == 403
    assert api.handle(None, "GET", "/v1/checkpoints", b"").status == 403
    assert api.handle("AUDITOR", "DELETE", "/v1/records", b"").status == 404


def test_a_bsn_is_accepted_only_in_a_post_body(api: AuditApi) -> None:
    body = json.dumps({"bsn": PEOPLE[0]}).encode()
    answer = api.handle("AUDITOR", "POST", "/v1/records/query", body)
    assert answer.status == 200 and _indexes(answer.body) == [0, 1]
    invalid = api.handle("AUDITOR", "POST", "/v1/records/query", b'{"bsn": "123456789"}')
    assert invalid.status == 400 and "123456789" not in json.dumps(invalid.body)


def test_a_proof_from_the_api_verifies_against_the_signed_checkpoint(
    api: AuditApi, signing_key: object
) -> None:
    answer = api.handle("NLA", "GET", "/v1/records/1/proof", b"")
    assert answer.status == 200, answer.body
    checkpoint = Checkpoint.from_dict(answer.body["checkpoint"])
    assert checkpoint.verify(signing_key.public_key())  # type: ignore[attr-defined]
    path = [bytes.fromhex(p) for p in answer.body["proof"]]
    entry = answer.body["entry"].encode("utf-8")
    assert verify_inclusion(leaf_hash(entry), 1, checkpoint.tree_size, path, checkpoint.root)
    assert api.handle("NLA", "GET", "/v1/records/0/proof", b"").status == 404  # not NLA's


@pytest.fixture
def https_server(api: AuditApi, federation_state: Path) -> Iterator[int]:
    certificate, key = api_identity(federation_state)
    context = server_tls_context(certificate, key, federation_state / "federation" / "ca.pem")
    server = make_server(api, "127.0.0.1", 0, context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _client(federation_state: Path, party: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(federation_state / "federation" / "ca.pem"))
    if party is not None:
        folder = federation_state / "federation" / "parties" / party
        context.load_cert_chain(str(folder / "tls.pem"), str(folder / "tls.key"))
    return context


def test_over_mutual_tls_the_certificate_names_the_party(
    https_server: int, federation_state: Path
) -> None:
    def get(party: str, target: str) -> tuple[int, dict[str, object]]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", https_server, context=_client(federation_state, party), timeout=10
        )
        connection.request("GET", target)
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        return response.status, body

    status, body = get("NLA", "/v1/records?signal=laa.frequent-mover")
    assert status == 200 and _indexes(body) == [1]
    status, body = get("AUDITOR", "/v1/records?signal=laa.frequent-mover")
    assert status == 200 and _indexes(body) == [0, 1, 2]
    status, body = get("AUDITOR", "/v1/checkpoints/latest")
    assert status == 200 and body["tree_size"] == 3


def test_without_a_client_certificate_the_handshake_fails(
    https_server: int, federation_state: Path
) -> None:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", https_server, context=_client(federation_state, None), timeout=10
    )
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        connection.request("GET", "/v1/checkpoints")
        connection.getresponse().read()
    connection.close()


# -- request bodies over a real socket: a declared, bounded length, sent in time ------------


@pytest.fixture
def impatient_server(api: AuditApi, federation_state: Path) -> Iterator[int]:
    """The API over mutual TLS, giving a POST body one second to arrive."""
    certificate, key = api_identity(federation_state)
    context = server_tls_context(certificate, key, federation_state / "federation" / "ca.pem")
    server = make_server(api, "127.0.0.1", 0, context, body_timeout=1.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _raw_tls(federation_state: Path, port: int) -> ssl.SSLSocket:
    """A TLS socket as a federation party (AUDITOR), to write requests byte by byte."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return _client(federation_state, "AUDITOR").wrap_socket(raw, server_hostname="127.0.0.1")


def _status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:80]
    return int(answer.split(b" ", 2)[1])


def _read_answer(connection: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


_QUERY = b'{"signal": "laa.frequent-mover"}'


@pytest.mark.parametrize(
    ("length_header", "status"),
    [
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: -65536\r\n", 400),
        (b"Content-Length: +32\r\n", 400),
        (b"Content-Length: 3_2\r\n", 400),
        (b"Content-Length: 32\r\nContent-Length: 33\r\n", 400),
        (b"Content-Length: 1000000\r\n", 413),
        (b"", 411),
        (b"Transfer-Encoding: chunked\r\n", 411),
    ],
    ids=["minus-one", "negative", "plus-sign", "underscore", "twice", "too-large", "none", "chunk"],
)
def test_a_body_without_a_sane_length_is_refused_without_reading_it(
    impatient_server: int, federation_state: Path, length_header: bytes, status: int
) -> None:
    # before the fix Content-Length: -1 made the server read until the client closed; this
    # client keeps sending and never closes, so it gets no answer at all (a socket timeout)
    with _raw_tls(federation_state, impatient_server) as connection:
        connection.sendall(
            b"POST /v1/records/query HTTP/1.1\r\nHost: audit\r\n" + length_header + b"\r\n"
        )
        connection.sendall(_QUERY + b" " * 4096)
        answer = _read_answer(connection)
    assert _status_of(answer) == status


def test_a_body_of_the_declared_length_is_answered(
    impatient_server: int, federation_state: Path
) -> None:
    with _raw_tls(federation_state, impatient_server) as connection:
        connection.sendall(
            b"POST /v1/records/query HTTP/1.1\r\nHost: audit\r\n"
            + f"Content-Length: {len(_QUERY)}\r\n\r\n".encode()
            + _QUERY
        )
        answer = _read_answer(connection)
    assert _status_of(answer) == 200
    assert _indexes(json.loads(answer.split(b"\r\n\r\n", 1)[1])) == [0, 1, 2]


def test_a_trickled_body_is_dropped_once_its_time_is_up(
    impatient_server: int, federation_state: Path
) -> None:
    # one byte every 0.2 s of a 400-byte body: each byte arrives well within the socket
    # timeout, so only a deadline on the whole body stops it (the server allows 1 s here)
    with _raw_tls(federation_state, impatient_server) as connection:
        connection.sendall(
            b"POST /v1/records/query HTTP/1.1\r\nHost: audit\r\nContent-Length: 400\r\n\r\n"
        )
        answer: bytes | None = None
        for _ in range(399):
            try:
                connection.sendall(b" ")
                connection.settimeout(0.2)
                answer = connection.recv(65536)  # the server answered, or closed (b"")
            except TimeoutError:
                continue  # nothing yet: keep trickling
            except OSError:
                answer = b""  # the server closed the connection
            break
        assert answer is not None, "the server kept waiting for a body trickled over 80 seconds"
        connection.settimeout(30)
        answer += _read_answer(connection) if answer else b""
    assert answer == b"" or _status_of(answer) == 408


def test_a_stalled_body_is_dropped(impatient_server: int, federation_state: Path) -> None:
    with _raw_tls(federation_state, impatient_server) as connection:
        connection.sendall(
            b"POST /v1/records/query HTTP/1.1\r\nHost: audit\r\nContent-Length: 400\r\n\r\n{"
        )
        connection.settimeout(20)  # the server's own socket timeout (30 s) must not be needed
        answer = _read_answer(connection)
    assert _status_of(answer) == 408


def _peer(common_name: str, unit: str | None) -> dict[str, object]:
    subject = [(("commonName", common_name),)]
    if unit is not None:
        subject.append((("organizationalUnitName", unit),))
    return {"subject": tuple(subject)}


def test_a_certificate_of_a_revoked_key_generation_authenticates_nobody() -> None:
    generations = {"NLA": 2}
    assert principal_of(_peer("NLA", "key-generation-2"), generations) == "NLA"
    assert principal_of(_peer("NLA", "key-generation-1"), generations) is None  # revoked
    assert principal_of(_peer("NLA", None), generations) is None  # from before generations
    assert principal_of(_peer("ADMIN", None), generations) == "ADMIN"  # not a listed party
    assert principal_of(_peer("NLA", "key-generation-1")) == "NLA"  # no directory given


def test_the_server_asks_the_current_generations_for_every_request(
    api: AuditApi, federation_state: Path
) -> None:
    """The federation's own client certificates carry generation 1; the API refuses them as
    soon as the directory says a party moved on, without a restart."""
    current = {"NLA": 1}
    certificate, key = api_identity(federation_state)
    context = server_tls_context(certificate, key, federation_state / "federation" / "ca.pem")
    server = make_server(api, "127.0.0.1", 0, context, generations=lambda: current)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    try:
        assert _get_as(federation_state, port, "NLA") == 200
        current["NLA"] = 2  # NLA was revoked: its certificate is of generation 1
        assert _get_as(federation_state, port, "NLA") == 403  # "unknown principal"
    finally:
        server.shutdown()
        server.server_close()


def _get_as(state: Path, port: int, party: str) -> int:
    folder = state / "federation" / "parties" / party
    client = ssl.create_default_context(cafile=str(state / "federation" / "ca.pem"))
    client.load_cert_chain(str(folder / "tls.pem"), str(folder / "tls.key"))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=client, timeout=10)
    try:
        connection.request("GET", "/v1/checkpoints")
        return connection.getresponse().status
    finally:
        connection.close()


def _logging_api(
    location: str, pseudonymiser: SubjectPseudonymiser, signing_key: Ed25519PrivateKey
) -> AuditApi:
    """An API over the log at ``location`` that writes every question to it, signed."""
    return AuditApi(
        lambda: AccessLogStore.open(location),
        KINDS,
        pseudonymiser,
        ConsultationLog(FixedClock(), signing_key),
    )


def test_every_api_question_is_logged_before_it_is_answered(
    tmp_path: Path,
    make_record: RecordFactory,
    pseudonymiser: SubjectPseudonymiser,
    signing_key: Ed25519PrivateKey,
) -> None:
    location = str(tmp_path / "audit.sqlite")
    with AccessLogStore.open(location) as store:
        store.append([make_record(bsn=PEOPLE[0]), make_record(bsn=PEOPLE[1])])
        store.checkpoint(signing_key, FixedClock())
    api = _logging_api(location, pseudonymiser, signing_key)
    body = json.dumps({"bsn": PEOPLE[0]}).encode()
    assert api.handle("AUDITOR", "POST", "/v1/records/query", body).status == 200
    assert api.handle("GM0363", "GET", "/v1/records/1/proof", b"").status == 200
    assert api.handle("AUDITOR", "GET", "/v1/records", b"").status == 400  # refused: not asked
    with AccessLogStore.open(location) as store:
        looked = [s.record for s in store.query_all(RecordFilter(kind=EventKind.CONSULTED))]
        latest = store.latest_checkpoint()
        assert latest is not None and latest.tree_size == store.size()
    assert [(r.sender, r.signal, r.reason_codes, r.subject) for r in looked] == [
        ("AUDITOR", "api.records", ("filter.bsn",), pseudonymiser.pseudonym(PEOPLE[0])),
        ("GM0363", "api.proof", ("filter.leaf_index",), pseudonymiser.pseudonym(PEOPLE[1])),
    ]


@pytest.mark.parametrize("store_location", [BACKENDS[1]], indirect=True)
def test_the_api_reconnects_to_a_database_that_dropped_its_connections(
    store_location: str,
    make_record: RecordFactory,
    pseudonymiser: SubjectPseudonymiser,
    signing_key: Ed25519PrivateKey,
) -> None:
    import psycopg

    with AccessLogStore.open(store_location) as store:
        store.append([make_record(bsn=PEOPLE[0])])
        store.checkpoint(signing_key, FixedClock())
    api = _logging_api(store_location, pseudonymiser, signing_key)
    assert api.handle("AUDITOR", "GET", "/v1/records?sender=RVIG", b"").status == 200
    with psycopg.connect(store_location, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database()"
        )
    again = api.handle("AUDITOR", "GET", "/v1/records?sender=RVIG", b"")
    assert again.status == 200, again.body
    assert _indexes(again.body)[0] == 0
