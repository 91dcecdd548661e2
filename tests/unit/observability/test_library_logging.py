"""Library log lines (kafka-python, psycopg: standard ``logging``) go through the same
processors as sigex's own: JSON lines on stderr, BSNs redacted, WARNING and up."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sigex.config import load_settings
from sigex.logs import configure
from sigex.observability import configure_logging

BSN = "123456782"  # passes the elfproef


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_a_kafka_warning_is_a_json_line_without_the_bsn(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"SIGEX_LOG_FORMAT": "json", "SIGEX_LOG_LEVEL": "INFO"}))
    logging.getLogger("kafka").warning("record for subject %s could not be sent", BSN)
    logging.getLogger("kafka.conn").info("connecting to broker 123456782")  # below WARNING
    logging.getLogger("psycopg").error(f"query failed near {BSN}")
    try:
        raise ValueError(f"bad value {BSN}")
    except ValueError:
        logging.getLogger("kafka.producer").exception("send failed")

    err = capsys.readouterr().err
    assert BSN not in err
    lines = _json_lines(err)  # every line is JSON
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("kafka", "warning"),
        ("psycopg", "error"),
        ("kafka.producer", "error"),
    ]
    assert lines[0]["event"] == "record for subject [bsn] could not be sent"
    assert lines[1]["event"] == "query failed near [bsn]"
    assert "ValueError: bad value [bsn]" in str(lines[2]["exception"])
    assert all("timestamp" in line for line in lines)


@pytest.mark.usefixtures("restore_logging")
def test_configuring_twice_writes_each_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    configure(json=True, level="WARNING")
    configure(json=True, level="WARNING")
    logging.getLogger("kafka").warning("once")
    assert [line["event"] for line in _json_lines(capsys.readouterr().err)] == ["once"]


@pytest.mark.usefixtures("restore_logging")
def test_library_lines_follow_a_higher_configured_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(json=True, level="ERROR")
    logging.getLogger("kafka").warning("not shown")
    logging.getLogger("kafka").error("shown")
    assert [line["event"] for line in _json_lines(capsys.readouterr().err)] == ["shown"]
