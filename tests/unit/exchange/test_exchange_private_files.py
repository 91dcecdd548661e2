"""Services stop without the audit pseudonym key; received signals are written 0600.

Without the key a gateway used to make a new one, so every later access record
carried other pseudonyms and a person's art. 15 report split in two. Now the
gateway and the audit indexer refuse to start, with one line naming the file.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.cli import main
from sigex.clock import FixedClock
from sigex.consumers.signal_file import SignalFile
from sigex.exchange.pseudonyms import pseudonym_key_path
from sigex.identity import init_federation, read_parties
from sigex.partners.consumers.inbox import Inbox

REPOSITORY = Path(__file__).resolve().parents[3]
UNREACHABLE = "127.0.0.1:1"  # nothing listens: a command that got this far would fail anyway


@pytest.fixture
def state_without_pseudonym_key(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    parties = read_parties(REPOSITORY / "policies" / "parties.yaml")
    init_federation(state, parties, FixedClock(datetime(2027, 2, 1, tzinfo=UTC)))
    pseudonym_key_path(state).unlink()  # lost, or never restored from the backup
    return state


def _assert_refused(result_output: str, exit_code: int, state: Path) -> None:
    path = pseudonym_key_path(state)
    assert exit_code == 2, result_output
    lines = result_output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result_output, result_output
    assert f"audit pseudonym key {path} is missing" in lines[0]
    assert "sigex keys init" in lines[0] and "backup" in lines[0]
    assert not path.exists(), "a new pseudonym key was made"


def test_the_gateway_refuses_to_start_without_the_pseudonym_key(
    state_without_pseudonym_key: Path,
) -> None:
    state = state_without_pseudonym_key
    result = CliRunner().invoke(
        main,
        ["gateway", "run", "--state-dir", str(state), "--bootstrap", UNREACHABLE, "--no-metrics"],
        env={"SIGEX_ENV": "test"},
    )
    _assert_refused(result.output, result.exit_code, state)


def test_the_audit_indexer_refuses_to_start_without_the_pseudonym_key(
    state_without_pseudonym_key: Path,
) -> None:
    state = state_without_pseudonym_key
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "index",
            "--state-dir",
            str(state),
            "--db",
            str(state / "audit.sqlite"),
            "--bootstrap",
            UNREACHABLE,
            "--no-metrics",
            "--idle-exit",
            "1",
        ],
        env={"SIGEX_ENV": "test"},
    )
    _assert_refused(result.output, result.exit_code, state)


def test_the_reference_inbox_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "inbox" / "GM0363.sqlite"
    inbox = Inbox(path)  # creates its tables: the file is written, not only opened
    assert inbox.count() == 0
    inbox.close()
    assert path.stat().st_size > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for companion in path.parent.glob(f"{path.name}-*"):  # a journal left behind, if any
        assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion


def test_the_subscribe_output_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "received.jsonl"
    sink = SignalFile(path)
    sink.write('{"message_id": "m1"}')
    sink.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sink = SignalFile(path)  # appending keeps what was there
    sink.write('{"message_id": "m2"}')
    sink.close()
    assert path.read_text(encoding="utf-8") == '{"message_id": "m1"}\n{"message_id": "m2"}\n'
