"""``sigex publish`` checks the whole file before it sends anything (issue 18, finding 2).

A bad record at line 301 must stop the command with that line number and
nothing sent. These tests point the command at a port where no broker
listens: if any record got past the first pass, the command would try to
connect, and the answer would be about the broker, not about line 301.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sigex.cli import main
from sigex.clock import SystemClock
from sigex.identity import init_federation, read_parties
from tests.conftest import REPO, free_port
from tests.unit.schemas.conftest import BSN_B, example_records, make_bsn

SIGNAL = "payroll.bsn-mismatch"
PURPOSE = "SUWI64_ARB"
BAD_LINE = 301


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def good_record(number: int) -> dict[str, Any]:
    record = {k: _json_value(v) for k, v in example_records()[SIGNAL].items()}
    record["signal_id"] = str(uuid.UUID(int=number + 1, version=4))
    record["bsn"] = make_bsn(10_000_000 + number)
    return record


def _with(**changes: object) -> Callable[[dict[str, Any]], bytes]:
    return lambda record: json.dumps(record | changes).encode()


def _without(name: str) -> Callable[[dict[str, Any]], bytes]:
    return lambda record: json.dumps({k: v for k, v in record.items() if k != name}).encode()


#: what line 301 holds instead of a good record, and what the error must say about it
BAD_LINES: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "malformed JSON": (lambda r: json.dumps(r).encode()[:-3], "is not valid JSON"),
    "a JSON array": (lambda r: json.dumps([r]).encode(), "is not a JSON object"),
    "not UTF-8": (lambda r: json.dumps(r).encode().replace(b"Jansen", b"J\xe9nsen"), "UTF-8"),
    "wrong type": (_with(employer_kvk=12345678), "'employer_kvk'"),
    "unknown enum symbol": (_with(kind="MAYBE"), "'kind': must be one of its symbols"),
    "BSN failing the check digit": (_with(bsn="111111111"), "'bsn': not a valid BSN"),
    "missing field": (_without("employer_kvk"), "'employer_kvk': is required"),
    "unknown field": (_with(colour="red"), "'colour': is not a field"),
    "integer for a date": (_with(payroll_period=20089), "'payroll_period': must be a date"),
    "number for a timestamp": (_with(detected_at=1.8e12), "'detected_at': must be a timestamp"),
    "timestamp without a zone": (
        _with(detected_at="2027-02-01T09:30:00"),
        "'detected_at': must be a timestamp with a time zone",
    ),
    "not a UUID": (_with(signal_id="not-a-uuid"), "'signal_id': must be a UUID"),
    "signal_id twice": (
        lambda r: json.dumps(r | {"signal_id": good_record(7)["signal_id"]}).encode(),
        "its signal_id is the signal_id of line 7",
    ),
    "over the broker's size limit": (
        _with(family_name="x" * 1_100_000),
        "more than its limit of 1048576",
    ),
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("state")
    init_federation(folder, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
    return folder


def write_file(path: Path, bad: Callable[[dict[str, Any]], bytes] | None) -> Path:
    with path.open("wb") as out:
        for number in range(1, 401):
            record = good_record(number)
            line = bad(record) if bad is not None and number == BAD_LINE else None
            out.write((line or json.dumps(record).encode()) + b"\n")
    return path


def run_publish(state: Path, records: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        main,
        [
            "publish",
            "--as",
            "UWV",
            "--signal",
            SIGNAL,
            "--purpose",
            PURPOSE,
            "--state-dir",
            str(state),
            "--bootstrap",
            f"127.0.0.1:{free_port()}",
            *extra,
            str(records),
        ],
        env={"SIGEX_ENV": "development"},
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SIGEX_BOOTSTRAP", "SIGEX_STATE_DIR", "SIGEX_PARTY"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_bad_record_at_line_301_stops_everything_naming_its_line(
    state: Path, tmp_path: Path, case: str, clean_env: None
) -> None:
    bad, expected = BAD_LINES[case]
    result = run_publish(state, write_file(tmp_path / "records.jsonl", bad))
    output = result.output  # stdout and stderr together
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"line {BAD_LINE}: " in lines[0] and expected in lines[0], lines[0]
    assert "nothing was sent" in lines[0]
    assert "Traceback" not in output and "record 44" not in output
    assert "111111111" not in output and BSN_B not in output


def test_a_broker_that_does_not_answer_is_one_line(
    state: Path, tmp_path: Path, clean_env: None
) -> None:
    result = run_publish(state, write_file(tmp_path / "records.jsonl", None))
    output = result.output  # stdout and stderr together
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    # kafka's own connection warnings may come first (as log lines); the answer is one line
    lines = [line for line in output.splitlines() if line.startswith("sigex:")]
    assert len(lines) == 1 and output.rstrip().endswith(lines[0]), output
    assert "no broker answered at 127.0.0.1:" in lines[0] and "nothing was sent" in lines[0]


def test_help_says_the_file_is_checked_first_and_a_rerun_is_safe() -> None:
    result = CliRunner().invoke(main, ["publish", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "checks every record" in text and "before anything is sent" in text
    assert "running the same command again" in text and "delivers nothing twice" in text
