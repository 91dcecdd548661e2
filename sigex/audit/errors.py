"""Errors of the audit service. Messages name fields, rows and rules, never personal data.

The root, :class:`AccessLogError`, and the errors of the access record itself live in
:mod:`sigex.exchange.errors`, beside the record; they are re-exported here.
"""

from __future__ import annotations

from sigex.exchange.errors import AccessLogError, PseudonymKeyMissing, RecordFormatError
from sigex.merkle import MerkleError


class StoreError(AccessLogError):
    """The database could not be opened, read or written."""


class LogNotFound(StoreError):
    """No access log at the location (reading commands and verify never create one)."""


class LogCorrupted(StoreError):
    """The database is damaged, truncated or holds values of the wrong type: not a readable log."""


class ProofError(AccessLogError, MerkleError):
    """A proof could not be built or does not verify."""


class CheckpointError(AccessLogError):
    """A checkpoint is malformed, unsigned, or its signature does not verify."""


class NoteError(CheckpointError):
    """A signed note (C2SP signed-note) is not in the format: text, blank line, signatures."""


class WitnessError(AccessLogError):
    """A witness could not check or co-sign a checkpoint (not an alarm: nothing was proven)."""


class WitnessPolicyError(AccessLogError):
    """The witness policy file is malformed or names parties the federation lacks."""


class QueryRefused(AccessLogError):
    """A query lacks a filter or asks for records the caller may not see."""


class ExportFormatError(AccessLogError):
    """An export file is not in the expected format."""


class ApiIdentityMissing(AccessLogError):
    """The audit API's TLS server certificate or key is missing."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"audit API TLS file {path} is missing: run 'sigex keys init' (it adds it to an"
            " existing federation) or pass --cert and --key"
        )


__all__ = [
    "AccessLogError",
    "ApiIdentityMissing",
    "CheckpointError",
    "ExportFormatError",
    "LogCorrupted",
    "LogNotFound",
    "NoteError",
    "ProofError",
    "PseudonymKeyMissing",
    "QueryRefused",
    "RecordFormatError",
    "StoreError",
    "WitnessError",
    "WitnessPolicyError",
]
