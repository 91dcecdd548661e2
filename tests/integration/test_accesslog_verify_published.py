"""``sigex audit verify`` compares the log with the checkpoints published on the broker by
default whenever a broker is configured (``SIGEX_BOOTSTRAP``), over mutual TLS with ACLs.

A broker of its own: the checkpoints this test publishes on ``sigex.audit.checkpoints`` must not
meet another test's log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.audit.store import AccessLogStore
from sigex.cli import main
from sigex.exchange.access_record import AccessRecord
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from tests.access_records import delivered_record
from tests.integration.conftest import SecureExchange, running_exchange
from tests.witnessing import witness_latest

RECORDS = 40


@pytest.fixture(scope="module")
def own_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureExchange]:
    yield from running_exchange(tmp_path_factory.mktemp("verify-published"))


def _records(count: int) -> list[AccessRecord]:
    subject = SubjectPseudonymiser(b"p" * 32).pseudonym("111222333")
    return [
        delivered_record(number, subject, trace_id=uuid.uuid4().hex, message_id=str(uuid.uuid4()))
        for number in range(count)
    ]


def _sigex(exchange: SecureExchange, *args: str, broker: bool = True) -> tuple[int, str]:
    env = {"SIGEX_BOOTSTRAP": exchange.bootstrap if broker else None, "SIGEX_AUDIT_DB": None}
    result = CliRunner(env=env).invoke(
        main, ["audit", args[0], "--state-dir", str(exchange.state_dir), *args[1:]]
    )
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"sigex raised {result.exception!r}") from result.exception
    return result.exit_code, result.output


def test_an_emptied_log_fails_against_the_checkpoints_published_on_the_broker(
    own_exchange: SecureExchange, tmp_path: Path
) -> None:
    db = tmp_path / "audit.sqlite"
    with AccessLogStore.open(str(db)) as store:
        store.append(_records(RECORDS))
    code, text = _sigex(
        own_exchange, "checkpoint", "--db", str(db), "--bootstrap", own_exchange.bootstrap
    )
    assert code == 0, text
    assert json.loads(text)["tree_size"] == RECORDS

    witness_latest(own_exchange.state_dir, str(db))
    # with the broker in the environment, verify reads the published checkpoint back
    code, text = _sigex(own_exchange, "verify", "--db", str(db))
    assert code == 0, text
    assert f"\nok: {RECORDS} records, 2 signed checkpoints match" in text, text

    db.unlink()
    AccessLogStore.open(str(db)).close()  # an insider puts an empty log in its place

    code, text = _sigex(own_exchange, "verify", "--db", str(db), "--allow-empty")
    assert code == 1, text
    assert f"records 0..{RECORDS - 1} were removed or the database was rolled back" in text
    code, text = _sigex(own_exchange, "verify", "--db", str(db))
    assert code == 1, text
    assert "the log: has no records" in text
    # only an explicit choice skips the broker
    code, text = _sigex(own_exchange, "verify", "--db", str(db), "--allow-empty", "--offline")
    assert code == 0 and text.startswith("ok: 0 records"), text
