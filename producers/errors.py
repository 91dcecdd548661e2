"""Errors of the producer side: Publisher, synthetic data generator, reference finders."""

from __future__ import annotations

from sigex.errors import SigexError


class ProducerError(SigexError):
    """A producer could not read its input or publish a signal."""


class MalformedInput(ProducerError):
    """An input file broke its documented layout.

    The message names the file, the line and the column, and the rule that was
    broken; never the value, because a value may be a BSN.
    """

    def __init__(self, file: str, line: int, column: str | None, rule: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.rule = rule
        where = f"{file}: line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {rule}")


class InputMissing(ProducerError):
    """An input file the finder needs is not there."""

    def __init__(self, file: str) -> None:
        self.file = file
        super().__init__(f"input file {file} does not exist")


class GeneratorSettingsInvalid(ProducerError):
    """The synthetic data generator was asked for something it cannot make."""
