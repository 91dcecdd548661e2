"""Fixtures of the access log tests: records, keys and a store on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.store import AccessLogStore
from sigex.clock import FixedClock, SystemClock
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
PEOPLE = ("111222333", "123456782", "999999990", "234567892")


def _postgres_dsn(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("postgres_dsn"))
    except pytest.FixtureLookupError:
        dsn = os.environ.get("SIGEX_TEST_POSTGRES_DSN")
        if not dsn:
            pytest.skip("no PostgreSQL: set SIGEX_TEST_POSTGRES_DSN")
        return dsn


@pytest.fixture
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty access log location on the backend named by the test's parameter."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield str(tmp_path / "audit.sqlite")
        return
    import psycopg

    dsn = _postgres_dsn(request)
    schema = f"sigex_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}".encode())
    separator = "&" if "?" in dsn else "?"
    yield f"{dsn}{separator}options={quote(f'-c search_path={schema}')}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@pytest.fixture
def store(store_location: str) -> Iterator[AccessLogStore]:
    opened = AccessLogStore.open(store_location)
    yield opened
    opened.close()


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2027, 2, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def pseudonymiser() -> SubjectPseudonymiser:
    return SubjectPseudonymiser(secrets.token_bytes(32))


RecordFactory = Callable[..., AccessRecord]


@pytest.fixture
def make_record(pseudonymiser: SubjectPseudonymiser) -> RecordFactory:
    """Builds valid records; keyword arguments override fields (``bsn`` sets the subject)."""
    counter = iter(range(1, 10**9))

    def build(**overrides: object) -> AccessRecord:
        number = next(counter)
        bsn = str(overrides.pop("bsn", PEOPLE[number % len(PEOPLE)]))
        kind = overrides.pop("kind", EventKind.DELIVERED)
        assert isinstance(kind, EventKind)
        refused = kind in (EventKind.REFUSED_AT_PUBLISH, EventKind.REFUSED_FOR_RECIPIENT)
        fields: dict[str, object] = {
            "trace_id": f"{number:032x}",
            "operation_id": f"{number:016x}",
            "occurred_at": datetime(2027, 2, 1, tzinfo=UTC) + timedelta(minutes=number),
            "kind": kind,
            "sender": "RVIG",
            "recipient": "GM0363",
            "signal": "laa.frequent-mover",
            "purpose": "LAA_SIGNAAL",
            "legal_basis": "NL.WBRP.LAA",
            "agreement_id": "AGR-LAA-GM0363",
            "agreement_version": 1,
            "policy_version": "2027.02.1",
            "outcome": Outcome.DENY if refused else Outcome.PERMIT,
            "reason_codes": ("NO_AGREEMENT",) if refused else (),
            "disclosed_fields": () if refused else ("bsn", "address"),
            "message_id": str(uuid.UUID(int=number)),
            "subject": pseudonymiser.pseudonym(bsn),
        }
        fields.update(overrides)
        return AccessRecord(**fields)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def federation_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development federation (CA, keys, signed directory) shared by the CLI and API tests."""
    from sigex.identity.federation import init_federation, read_parties

    state = tmp_path_factory.mktemp("state")
    parties_file = Path(__file__).resolve().parents[3] / "policies" / "parties.yaml"
    init_federation(state, read_parties(parties_file), SystemClock())
    return state
