"""Errors of the schema layer: unknown signals, malformed schemas, records that do not fit.

Every message names signals, fields and rules; none ever contains a field's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigex.errors import InvalidIdentifier, SigexError


class SchemaError(SigexError):
    """Something about a signal schema or a record of it is wrong."""


class UnknownSchema(SchemaError):
    """No schema is catalogued for this signal (or this version of it)."""

    def __init__(self, signal: str, version: int | None = None) -> None:
        self.signal = signal
        self.version = version
        where = f"signal {signal!r}" if version is None else f"signal {signal!r} version {version}"
        super().__init__(f"{where}: no schema in the catalogue")


class CatalogueError(SchemaError):
    """A schema file is malformed or misses a required sigex annotation."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class SchemaViolation(SchemaError):
    """A record does not fit its schema; the message names the field and the rule."""

    def __init__(self, signal: str, field: str, rule: str) -> None:
        self.signal = signal
        self.field = field
        self.rule = rule
        super().__init__(f"signal {signal!r} field {field!r}: {rule}")


class FieldIdentifierInvalid(SchemaViolation, InvalidIdentifier):
    """An identifier field of a record fails its check.

    Both a :class:`SchemaViolation` (so ``except SchemaError`` catches it with
    every other bad record) and an :class:`~sigex.errors.InvalidIdentifier`
    (so it carries ``kind`` and ``rule``). Names the field and rule, never the value.
    """

    def __init__(self, signal: str, cause: InvalidIdentifier) -> None:
        self.signal = signal
        self.field = cause.field
        self.kind = cause.kind
        self.rule = cause.rule
        message = f"field {cause.field!r}: not a valid {cause.kind} ({cause.rule})"
        Exception.__init__(self, f"signal {signal!r} {message}")


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason why two versions of a schema cannot read each other's data."""

    field: str
    direction: str  # "backward" (new reads old) or "forward" (old reads new)
    message: str

    def __str__(self) -> str:
        return f"field {self.field!r}: {self.message} ({self.direction})"


class IncompatibleSchema(SchemaError):
    """A new version of a schema cannot read, or be read by, the previous version."""

    def __init__(
        self, signal: str, old: int, new: int, problems: Sequence[Incompatibility]
    ) -> None:
        self.signal = signal
        self.problems = tuple(problems)
        listed = "; ".join(str(problem) for problem in self.problems)
        super().__init__(f"signal {signal!r} version {new} is incompatible with {old}: {listed}")
