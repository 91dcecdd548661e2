"""Errors of the access log. Messages name fields, rows and rules, never personal data."""

from __future__ import annotations

from sigex.errors import SigexError
from sigex.merkle import MerkleError


class AccessLogError(SigexError):
    """The access log refused or could not do something."""


class RecordFormatError(AccessLogError):
    """Bytes or fields do not form a valid, canonical access record."""


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


class QueryRefused(AccessLogError):
    """A query lacks a filter or asks for records the caller may not see."""


class ExportFormatError(AccessLogError):
    """An export file is not in the expected format."""


class PseudonymKeyMissing(AccessLogError):
    """The audit pseudonym key is missing; a new one would split every person's records."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"audit pseudonym key {path} is missing: restore it from the federation backup"
            " (or, for a new federation, run 'sigex keys init'); a new key would give every"
            " person new pseudonyms and split the access log"
        )


class ApiIdentityMissing(AccessLogError):
    """The audit API's TLS server certificate or key is missing."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"audit API TLS file {path} is missing: run 'sigex keys init' (it adds it to an"
            " existing federation) or pass --cert and --key"
        )
