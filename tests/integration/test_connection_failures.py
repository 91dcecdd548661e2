"""Against the real brokers: each way a connection fails is one line, in seconds.

Before, every case below ended after about 31 s in ``KafkaTimeoutError: Unable to
bootstrap``. The preflight (sigex/preflight.py) now tells them apart, and every
command reaches the broker through it. Run as the operator would: the ``sigex``
executable in a subprocess, with the real TLS broker (mutual TLS, ACLs) of the
secure exchange and a real plaintext broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigex.clock import FixedClock
from sigex.config import TlsFiles
from sigex.identity import init_federation, read_parties
from sigex.preflight import NotAKafkaBroker, TlsFileUnusable, TlsRefused, check_broker
from tests.integration.conftest import REPO, SecureExchange
from tests.unit.producers.test_producers_publish_file import write_file

SIGEX = str(Path(sys.executable).with_name("sigex"))
#: generous: the preflight answers in well under a second here; kafka-python took ~31 s
SECONDS = 20


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another federation: same party codes, another CA."""
    state = tmp_path_factory.mktemp("foreign")
    parties = read_parties(REPO / "policies" / "parties.yaml")
    init_federation(state, parties, FixedClock(datetime.now(tz=UTC)))
    return state


def _tls(state: Path, party: str) -> TlsFiles:
    folder = state / "federation" / "parties" / party
    return TlsFiles(state / "federation" / "ca.pem", folder / "tls.pem", folder / "tls.key")


def _run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}
    started = time.monotonic()
    done = subprocess.run(
        [SIGEX, *args], env=base | env, capture_output=True, text=True, timeout=120, check=False
    )
    return done, time.monotonic() - started


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_the_preflight_speaks_kafka_to_a_real_broker(
    kafka_bootstrap: str, secure_exchange: SecureExchange
) -> None:
    assert check_broker(kafka_bootstrap, None) == kafka_bootstrap.split(",", maxsplit=1)[0]
    tls = _tls(secure_exchange.state_dir, "NLA")
    assert check_broker(secure_exchange.bootstrap, tls) == secure_exchange.bootstrap


def test_a_ca_from_another_federation_is_named(
    secure_exchange: SecureExchange, foreign: Path
) -> None:
    ours = _tls(secure_exchange.state_dir, "NLA")
    theirs = _tls(foreign, "NLA")
    with pytest.raises(TlsRefused, match=r"does not verify against .*this federation's CA"):
        check_broker(secure_exchange.bootstrap, TlsFiles(theirs.ca, ours.cert, ours.key))


def test_a_certificate_from_another_federation_is_refused_by_the_broker(
    secure_exchange: SecureExchange, foreign: Path
) -> None:
    ours = _tls(secure_exchange.state_dir, "NLA")
    theirs = _tls(foreign, "NLA")
    refused = r"does not accept the certificate|refused the certificate"
    with pytest.raises(TlsRefused, match=refused):
        check_broker(secure_exchange.bootstrap, TlsFiles(ours.ca, theirs.cert, theirs.key))


def test_plaintext_to_the_tls_listener_and_tls_to_a_plaintext_one(
    secure_exchange: SecureExchange, kafka_bootstrap: str
) -> None:
    with pytest.raises(NotAKafkaBroker, match="is it a TLS listener"):
        check_broker(secure_exchange.bootstrap, None)
    with pytest.raises(TlsRefused, match="plaintext listener"):
        check_broker(kafka_bootstrap, _tls(secure_exchange.state_dir, "NLA"))


def test_publish_with_another_federations_certificates_is_one_line(
    secure_exchange: SecureExchange, foreign: Path, tmp_path: Path
) -> None:
    records = write_file(tmp_path / "records.jsonl", None)
    args = [
        "publish", "--as", "UWV", "--signal", "payroll.bsn-mismatch", "--purpose", "SUWI64_ARB",
        "--state-dir", str(foreign), str(records),
    ]  # fmt: skip
    done, took = _run(args, {"SIGEX_BOOTSTRAP": secure_exchange.bootstrap})
    line = _one_line(done)
    assert line.startswith(f"sigex: TLS handshake with {secure_exchange.bootstrap} failed")
    assert "nothing was sent" in line
    assert took < SECONDS


@pytest.mark.parametrize(
    ("command", "party"),
    [
        (["subscribe", "--as", "NLA", "--purpose", "SUWI64_ARB"], "NLA"),
        (["gateway", "run", "--no-metrics"], "GATEWAY"),
        (["provision"], "ADMIN"),
        (["audit", "index", "--no-metrics", "--idle-exit", "1"], "AUDIT"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]),
)
def test_a_missing_key_file_is_named_by_every_service(
    secure_exchange: SecureExchange, tmp_path: Path, command: list[str], party: str
) -> None:
    state = tmp_path / "state"
    shutil.copytree(secure_exchange.state_dir / "federation", state / "federation")
    folder = "admin" if party == "ADMIN" else f"parties/{party}"
    key = state / "federation" / folder / "tls.key"
    key.unlink()
    extra = ["--db", str(tmp_path / "audit.db")] if command[0] == "audit" else []
    done, took = _run(
        [*command, "--state-dir", str(state), *extra],
        {"SIGEX_BOOTSTRAP": secure_exchange.bootstrap},
    )
    line = _one_line(done)
    assert f"the TLS key {key} is missing" in line, line
    assert took < SECONDS


def test_a_broker_that_is_down_is_named_in_seconds(secure_exchange: SecureExchange) -> None:
    with pytest.raises(TlsFileUnusable):  # sanity: the files are checked first
        check_broker("127.0.0.1:1", TlsFiles(Path("/nonexistent"), Path("/x"), Path("/y")))
    done, took = _run(
        ["subscribe", "--as", "NLA", "--purpose", "SUWI64_ARB",
         "--state-dir", str(secure_exchange.state_dir)],
        {"SIGEX_BOOTSTRAP": "127.0.0.1:1"},
    )  # fmt: skip
    assert _one_line(done) == "sigex: no broker answered at 127.0.0.1:1 (connection refused)"
    assert took < SECONDS
