"""Helpers the command-line modules share: settings with flag overrides, JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from sigex.config import Settings, load_settings
from sigex.errors import SigexError
from sigex.transport import KafkaConnection, connection_for

_Command = TypeVar("_Command", bound=Callable[..., Any])


def connection_options(command: _Command) -> _Command:
    """``--state-dir``, ``--bootstrap`` and ``--plaintext``: how a command that talks to the
    broker is told where its keys are and where the broker is (see :func:`connect`)."""
    for option in reversed(
        (
            click.option(
                "--state-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Federation state folder [default: SIGEX_STATE_DIR or ~/.local/state/sigex].",
            ),
            click.option(
                "--bootstrap", default=None, help="Broker addresses [default: SIGEX_BOOTSTRAP]."
            ),
            click.option(
                "--plaintext",
                is_flag=True,
                help="No TLS (only when SIGEX_ENV is development or test).",
            ),
        )
    ):
        command = option(command)
    return command


class InputError(SigexError):
    """A command's input file is missing or malformed."""


def settings_with(state_dir: Path | None = None, bootstrap: str | None = None) -> Settings:
    """The process settings, with ``--state-dir`` and ``--bootstrap`` taking precedence."""
    environ = dict(os.environ)
    if state_dir is not None:
        environ["SIGEX_STATE_DIR"] = str(state_dir)
    if bootstrap is not None:
        environ["SIGEX_BOOTSTRAP"] = bootstrap
    return load_settings(environ)


def broker_connection(
    party: str,
    *,
    state_dir: Path | None = None,
    bootstrap: str | None = None,
    plaintext: bool = False,
    check: bool = True,
) -> KafkaConnection:
    """The one way a command reaches the broker, acting as ``party``.

    From the settings, with the command's ``--state-dir`` and ``--bootstrap`` on top:
    mutual TLS with the party's federation files (or SIGEX_TLS_*), plaintext only when
    asked for in a local environment (SIGEX_ENV development or test; refused otherwise).
    With ``check`` a broker must answer and accept this party's certificate before the
    command goes on; what is wrong is said in one line (:mod:`sigex.preflight`).
    """
    return connect(settings_with(state_dir, bootstrap), party, plaintext=plaintext, check=check)


def connect(
    settings: Settings, party: str, *, plaintext: bool = False, check: bool = True
) -> KafkaConnection:
    """:func:`broker_connection` for a command that already holds its settings."""
    connection = connection_for(settings, party, plaintext=plaintext)
    if check:
        connection.check()
    return connection


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; errors name the line, never its text."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from error
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}: line {number} is not valid JSON") from error
            if not isinstance(value, dict):
                raise InputError(f"{path}: line {number} is not a JSON object")
            yield number, value
