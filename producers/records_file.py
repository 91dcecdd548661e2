"""Publishing a JSON-lines file all or nothing: check every record first, then send.

:func:`check_file` is a streaming first pass over the whole file: each line
must be UTF-8 and one JSON object, each record must fit its schema exactly
(types, logical types, identifier checks), its sealed envelope must fit in
what the broker takes, and no ``signal_id`` may come twice. The first bad
line stops it with an error that names the file and the line, never a value;
nothing has been sent at that point.

:func:`publish_file` is the second pass: it reads the file again and hands it
to a :class:`~sigex.producers.publisher.Publisher` in batches. Every record goes out
under a message id derived from its ``signal_id``, so if the broker fails
half-way, running the same command again delivers only what was missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sigex.errors import SigexError
from sigex.exchange.protocol import from_json_record
from sigex.policies.decide import Reason
from sigex.producers.errors import ProducerError
from sigex.producers.publisher import (
    DEFAULT_MAX_MESSAGE_BYTES,
    InvalidRecord,
    Publisher,
    PublishFailed,
    checked_fields,
    signal_uuid,
)
from sigex.schemas.catalogue import SignalSpec


class InvalidInput(ProducerError):
    """A line of the input file is not a valid record (found by the first pass: nothing sent)."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path}: line {line}: {problem}; nothing was sent")


class InputChanged(ProducerError):
    """The file changed between the check and the sending."""


class PartlySent(ProducerError):
    """The broker failed part-way: the message says what is on the broker and what to do."""

    def __init__(self, path: Path, sent: int, total: int, last_line: int, cause: str) -> None:
        self.sent = sent
        self.total = total
        through = f" (through line {last_line})" if sent else ""
        super().__init__(
            f"{path}: {cause}; {sent} of {total} records reached the broker{through}. "
            "Run the same command again: records already sent keep their message id "
            "and are not delivered twice"
        )


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What the file looked like when it was checked (size and modification time)."""

    size: int
    modified_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        status = os.stat(path)
        return cls(status.st_size, status.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class CheckedFile:
    path: Path
    records: int
    stamp: FileStamp


@dataclass(frozen=True, slots=True)
class PublishedLine:
    line: int
    message_id: str
    trace_id: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RefusedLine:
    line: int
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    published: tuple[PublishedLine, ...]
    refused: tuple[RefusedLine, ...]


def read_records(path: Path, spec: SignalSpec) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, typed record) for every non-empty line; InvalidInput names a bad line.

    A line must be UTF-8 and one JSON object; dates and timestamps in it are
    ISO 8601 strings (:func:`sigex.exchange.protocol.from_json_record`).
    """
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ProducerError(f"{path}: cannot be read ({error.strerror})") from error
    with handle:
        for line, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInput(path, line, "is not valid UTF-8") from error
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as error:
                raise InvalidInput(path, line, "is not valid JSON") from error
            if not isinstance(value, dict):
                raise InvalidInput(path, line, "is not a JSON object")
            try:
                record = from_json_record(spec, value)
            except SigexError as error:
                raise InvalidInput(path, line, str(error)) from error
            yield line, record


def check_file(
    path: Path,
    spec: SignalSpec,
    sender: str,
    purpose: str,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> CheckedFile:
    """The first pass: every record of ``path`` is checked; the first bad one raises.

    Memory: the signal ids seen so far (to find one used twice), about 100
    bytes per record; the records themselves are not kept.
    """
    stamp = FileStamp.of(path)
    first_line: dict[int, int] = {}
    count = 0
    for line, record in read_records(path, spec):
        try:
            checked_fields(spec, sender, purpose, record, max_message_bytes)
        except SigexError as error:
            raise InvalidInput(path, line, str(error)) from error
        signal_id = signal_uuid(spec, record)
        if signal_id is not None:
            earlier = first_line.setdefault(signal_id.int, line)
            if earlier != line:
                raise InvalidInput(path, line, f"its signal_id is the signal_id of line {earlier}")
        count += 1
    return CheckedFile(path, count, stamp)


def publish_file(
    publisher: Publisher,
    checked: CheckedFile,
    spec: SignalSpec,
    purpose: str,
    batch: int = 256,
) -> FileOutcome:
    """The second pass: send the checked file in batches of ``batch`` records."""
    path = checked.path
    if FileStamp.of(path) != checked.stamp:
        raise InputChanged(f"{path}: changed after it was checked; nothing was sent")
    published: list[PublishedLine] = []
    refused: list[RefusedLine] = []
    pending: list[tuple[int, dict[str, object]]] = []

    def flush() -> None:
        if not pending:
            return
        lines = [line for line, _ in pending]
        try:
            result = publisher.publish(spec.name, purpose, [record for _, record in pending])
        except InvalidRecord as error:
            raise InputChanged(
                f"{path}: line {lines[error.index]} changed after the file was checked "
                f"({error.cause}); {len(published)} records reached the broker before it"
            ) from error
        except PublishFailed as error:
            sent = published + [PublishedLine(lines[i], "", "", ()) for i in error.sent]
            raise PartlySent(
                path,
                len(sent),
                checked.records,
                max((p.line for p in sent), default=0),
                str(error),
            ) from error
        published.extend(
            PublishedLine(lines[p.index], p.message_id, p.trace_id, p.recipients)
            for p in result.published
        )
        refused.extend(RefusedLine(lines[r.index], r.reasons) for r in result.refused)
        pending.clear()

    try:
        for line, record in read_records(path, spec):
            pending.append((line, record))
            if len(pending) >= batch:
                flush()
    except InvalidInput as error:
        raise InputChanged(
            f"{path}: line {error.line} changed after the file was checked ({error.problem}); "
            f"{len(published)} records reached the broker before it"
        ) from error
    flush()
    return FileOutcome(tuple(published), tuple(refused))
