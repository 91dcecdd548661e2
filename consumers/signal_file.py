"""The ``sigex subscribe --out`` file: one JSON line per signal, kept across crashes.

The subscriber commits a batch's offsets only after the lines it wrote are on
disk (:meth:`SignalFile.sync`), so after a crash every committed signal is in
the file. Signals written but not yet committed come again after a restart;
the file's message ids are read back when it opens, so the subscriber drops
them instead of writing them twice. A kill in the middle of a write leaves a
last line without its newline: that torn line is cut off when the file opens
(its signal was not committed, so it comes again and is written whole).
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import BinaryIO

from sigex.consumers.errors import ConsumerError
from sigex.identity.keyfiles import create_private_file
from sigex.logs import get_logger

_log = get_logger(__name__)
_CHUNK = 64 * 1024


class SignalFileError(ConsumerError):
    """The output file holds something that is not a line this subscriber wrote."""


def repair_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write cut short); returns the bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return 0
        keep = _end_of_last_line(file, size)
        file.truncate(keep)
        file.flush()
        os.fsync(file.fileno())
    _log.warning("subscriber.out_file_repaired", removed_bytes=size - keep)
    return size - keep


def _end_of_last_line(file: BinaryIO, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        file.seek(start)
        chunk = file.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def read_message_ids(path: Path, limit: int) -> list[str]:
    """The message ids of the last ``limit`` lines, oldest first."""
    if not path.exists():
        return []
    ids: deque[str] = deque(maxlen=limit)
    with path.open("r", encoding="utf-8", errors="strict") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                message_id = json.loads(line)["message_id"]
            except (ValueError, KeyError, TypeError) as error:
                raise SignalFileError(
                    f"{path}: line {number} is not a received signal; "
                    "write to a new file or repair this one"
                ) from error
            ids.append(str(message_id))
    return list(ids)


class SignalFile:
    """An append-only JSON-lines file of received signals (mode 0600: it holds personal data)."""

    def __init__(self, path: Path, remember: int = 100_000) -> None:
        self.path = path
        self.repaired_bytes = repair_torn_tail(path)
        try:
            self.message_ids = read_message_ids(path, remember)
        except UnicodeDecodeError as error:
            raise SignalFileError(f"{path}: not a file of received signals (not UTF-8)") from error
        create_private_file(path)
        self._sink = path.open("a", encoding="utf-8")

    def write(self, line: str) -> None:
        self._sink.write(line + "\n")

    def sync(self) -> None:
        """Everything written so far is on disk (called before offsets are committed)."""
        self._sink.flush()
        os.fsync(self._sink.fileno())

    def close(self) -> None:
        self._sink.close()
