"""Helpers the command-line modules share: settings with flag overrides, JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sigex.config import Settings, load_settings
from sigex.errors import SigexError


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
