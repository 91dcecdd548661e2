"""The access log reads back what it wrote on a PostgreSQL database created as SQL_ASCII.

A database initialised without a UTF-8 locale (Debian's minimal images, an old
cluster) has the encoding SQL_ASCII, and psycopg then returns TEXT columns as
bytes: every stored time failed to parse and the audit API answered 400 to
``/v1/checkpoints/latest``. Found by running the compose stack on a PostgreSQL
image built from Debian's packages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.clock import FixedClock

from .conftest import RecordFactory, _postgres_dsn

pytestmark = pytest.mark.postgres


@pytest.fixture
def sql_ascii_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    import psycopg

    dsn = _postgres_dsn(request)
    name = f"sigex_ascii_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0".encode()
        )
    parts = urlsplit(dsn)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name}".encode())


def test_records_and_checkpoints_read_back_on_a_sql_ascii_database(
    sql_ascii_dsn: str, make_record: RecordFactory, clock: FixedClock
) -> None:
    key = Ed25519PrivateKey.generate()
    store = AccessLogStore.open(sql_ascii_dsn)
    try:
        written = [make_record() for _ in range(3)]
        store.append(written)
        signed = store.checkpoint(key, clock)
        assert store.latest_checkpoint() == signed
        read = list(store.query_all(RecordFilter(sender="RVIG")))
        assert [stored.record for stored in read] == written
    finally:
        store.close()
