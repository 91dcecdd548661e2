"""Errors of the access record and the audit pseudonyms, shared by every writer of records."""

from __future__ import annotations

from sigex.errors import SigexError


class AccessLogError(SigexError):
    """The access log refused or could not do something."""


class RecordFormatError(AccessLogError):
    """Bytes or fields do not form a valid, canonical access record."""


class PseudonymKeyMissing(AccessLogError):
    """The audit pseudonym key is missing; a new one would split every person's records."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"audit pseudonym key {path} is missing: restore it from the federation backup"
            " (or, for a new federation, run 'sigex keys init'); a new key would give every"
            " person new pseudonyms and split the access log"
        )
