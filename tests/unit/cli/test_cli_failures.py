"""Every failure of the command line is one line and a non-zero exit, never a traceback.

A sweep gives every command an option it does not have; then the commands that reach
the broker meet a closed port, and the ones that used to accept --plaintext in
production meet SIGEX_ENV=production; then each kind of unexpected exception goes
through the same mapping. --debug shows the traceback on purpose.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from kafka.errors import KafkaTimeoutError

from sigex.cli import main
from sigex.cli.main import (
    EXIT_IO,
    EXIT_SOFTWARE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE_OR_REFUSED,
    describe_failure,
)
from sigex.clock import FixedClock
from sigex.identity import init_federation, read_parties
from tests.unit.producers.test_producers_publish_file import write_file

REPO = Path(__file__).resolve().parents[3]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


ALL_COMMANDS = sorted(_commands(main))


def _one_line(result: Result) -> str:
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "a failure says something"
    return lines[-1]


def test_the_sweep_reaches_every_command() -> None:
    assert len(ALL_COMMANDS) >= 25
    assert ("publish",) in ALL_COMMANDS and ("audit", "verify") in ALL_COMMANDS


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_command_refuses_an_unknown_option_in_one_line(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option '--no-such-option'" in _one_line(result)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("state")
    parties = read_parties(REPO / "policies" / "parties.yaml")
    init_federation(folder, parties, FixedClock(datetime.now(tz=UTC)))
    return folder


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return write_file(tmp_path / "records.jsonl", None)


def _connecting_commands(state: Path, records: Path) -> dict[str, list[str]]:
    where = ["--state-dir", str(state)]
    return {
        "publish": [
            "publish", "--as", "UWV", "--signal", "payroll.bsn-mismatch",
            "--purpose", "SUWI64_ARB", *where, str(records),
        ],
        "subscribe": ["subscribe", "--as", "NLA", "--purpose", "SUWI64_ARB", *where],
        "gateway run": ["gateway", "run", "--no-metrics", *where],
        "provision": ["provision", *where],
        "audit index": ["audit", "index", "--no-metrics", *where, "--db", str(state / "a.db")],
        "keys revoke": ["keys", "revoke", "NLA", *where],
    }  # fmt: skip


@pytest.mark.parametrize(
    "name", ["publish", "subscribe", "gateway run", "provision", "audit index"]
)
def test_a_broker_that_does_not_answer_is_one_line_naming_the_address(
    name: str, state: Path, records: Path, closed_port: int
) -> None:
    args = _connecting_commands(state, records)[name]
    env = {"SIGEX_BOOTSTRAP": f"127.0.0.1:{closed_port}", "SIGEX_ENV": "production"}
    result = CliRunner().invoke(main, args, env=env)
    line = _one_line(result)
    assert result.exit_code == EXIT_USAGE_OR_REFUSED, result.output
    assert line.startswith(f"sigex: no broker answered at 127.0.0.1:{closed_port}"), line


@pytest.mark.parametrize("name", ["publish", "provision", "audit index"])
def test_a_missing_ca_file_is_named_before_any_connection(
    name: str, state: Path, records: Path, closed_port: int, tmp_path: Path
) -> None:
    args = _connecting_commands(state, records)[name]
    env = {
        "SIGEX_BOOTSTRAP": f"127.0.0.1:{closed_port}",
        "SIGEX_TLS_CA": str(tmp_path / "nowhere" / "ca.pem"),
        "SIGEX_PARTY": {"publish": "UWV", "provision": "ADMIN", "audit index": "AUDIT"}[name],
    }
    result = CliRunner().invoke(main, args, env=env)
    line = _one_line(result)
    assert result.exit_code == EXIT_USAGE_OR_REFUSED, result.output
    assert f"the TLS CA certificate {tmp_path / 'nowhere' / 'ca.pem'} is missing" in line


@pytest.mark.parametrize("name", ["provision", "audit index", "publish", "subscribe"])
def test_plaintext_is_refused_in_production_by_every_command(
    name: str, state: Path, records: Path, closed_port: int
) -> None:
    args = [*_connecting_commands(state, records)[name], "--plaintext"]
    env = {"SIGEX_BOOTSTRAP": f"127.0.0.1:{closed_port}", "SIGEX_ENV": "production"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == EXIT_USAGE_OR_REFUSED, result.output
    assert "--plaintext is allowed only when SIGEX_ENV is development or test" in _one_line(result)


def test_subscribing_to_a_signal_the_party_never_receives_is_one_line(
    state: Path, closed_port: int
) -> None:
    args = [
        "subscribe", "--as", "RVIG", "--purpose", "WTTA_TOEZICHT",
        "--signal", "waadi.admission-violation", "--state-dir", str(state), "--plaintext",
    ]  # fmt: skip
    env = {"SIGEX_BOOTSTRAP": f"127.0.0.1:{closed_port}", "SIGEX_ENV": "test"}
    result = CliRunner().invoke(main, args, env=env)
    line = _one_line(result)
    assert result.exit_code == EXIT_USAGE_OR_REFUSED, result.output
    assert "RVIG receives no waadi.admission-violation deliveries under any agreement" in line


# -- the mapping of unexpected exceptions -------------------------------------------------------


@pytest.fixture
def failing_command() -> Iterator[list[BaseException]]:
    raised: list[BaseException] = []

    @click.command("explode")
    def explode() -> None:
        raise raised[0]

    main.add_command(explode)
    yield raised
    main.commands.pop("explode")


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (KafkaTimeoutError("Unable to bootstrap from [('x', 1)]"), EXIT_UNAVAILABLE,
         "the Kafka client failed (KafkaTimeoutError)"),
        (ValueError("Must provide topics or pattern"), EXIT_SOFTWARE,
         "internal error (ValueError); run again with --debug"),
        (UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
         EXIT_USAGE_OR_REFUSED, "the input is not UTF-8 text (a bad byte at position 2)"),
        (FileNotFoundError(2, "No such file or directory", "/x/records.jsonl"), EXIT_IO,
         "/x/records.jsonl: no such file or directory"),
    ],
)  # fmt: skip
def test_an_unexpected_exception_is_one_line_with_its_exit_code(
    failing_command: list[BaseException], error: Exception, code: int, words: str
) -> None:
    failing_command.append(error)
    result = CliRunner().invoke(main, ["explode"])
    assert result.exit_code == code
    assert _one_line(result) == f"sigex: {words}" or words in _one_line(result)
    assert describe_failure(error)[1] == code


def test_debug_shows_the_traceback(failing_command: list[BaseException]) -> None:
    failing_command.append(ValueError("boom"))
    result = CliRunner().invoke(main, ["--debug", "explode"])
    assert isinstance(result.exception, ValueError)
    with_env = CliRunner().invoke(main, ["explode"], env={"SIGEX_DEBUG": "1"})
    assert isinstance(with_env.exception, ValueError)


def test_an_interrupt_exits_130_quietly(failing_command: list[BaseException]) -> None:
    failing_command.append(KeyboardInterrupt())
    result = CliRunner().invoke(main, ["explode"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output
