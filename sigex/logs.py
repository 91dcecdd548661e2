"""Operational logging with structlog: JSON or console lines, with BSNs redacted.

The access log is a different thing (a typed, tamper-evident record); this is
the operator's log. A processor in the chain replaces every nine-digit run
that passes the BSN elfproef with ``[bsn]`` so a BSN never reaches a log line,
even if a developer logs a value by mistake.

Libraries (kafka-python, psycopg) log through the standard library's ``logging``.
:func:`configure` puts a handler on its root logger that renders those lines
with the same processors, so they too are JSON (or console) lines on stderr
with BSNs redacted, from WARNING up (or from the configured level if higher):
kafka-python at INFO says something for every connection and fetch.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from sigex.identifiers import is_valid_bsn

_DIGIT_RUN = re.compile(r"(?<!\d)\d{9}(?!\d)")
REDACTED = "[bsn]"


def redact_text(text: str) -> str:
    """Replace each nine-digit run that could be a BSN."""
    return _DIGIT_RUN.sub(lambda m: REDACTED if is_valid_bsn(m.group(0)) else m.group(0), text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return REDACTED if len(text) == 9 and is_valid_bsn(text) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


def redact_bsn(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact anything that looks like a BSN in every value."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


#: The lowest level of library (standard ``logging``) lines that are written.
LIBRARY_LEVEL = "WARNING"


class _LibraryLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler installed by :func:`configure` (found again to replace it).

    It writes to whatever ``sys.stderr`` is when a line is logged, so a stream swapped in and
    closed again (a test runner's capture) is never written to afterwards.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # under the handler's lock
        super().emit(record)


def configure(json: bool = True, level: str = "INFO") -> None:
    """Configure structlog, and route the standard library's logging through it, once for a
    process (the CLI calls this; calling it again replaces the earlier setup)."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_bsn,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_library_logging(renderer, level)


def _route_library_logging(renderer: Any, level: str) -> None:
    """One handler on the root logger that formats every record like a structlog line."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_bsn,
            renderer,
        ],
    )
    handler = _LibraryLogHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for earlier in [h for h in root.handlers if isinstance(h, _LibraryLogHandler)]:
        root.removeHandler(earlier)
    root.addHandler(handler)
    root.setLevel(max(logging.getLevelName(level), logging.getLevelName(LIBRARY_LEVEL)))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
