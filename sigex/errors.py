"""The root of every error sigex raises on purpose.

Each package has its own ``errors.py`` with typed subclasses of
:class:`SigexError`, so a caller can catch one type for "sigex refused this"
and still tell a schema problem from a policy refusal. Error messages never
contain personal data: they name fields and rules, never values.
"""

from __future__ import annotations


class SigexError(Exception):
    """Something sigex refused or could not do; the message is safe to log."""


class ConfigurationError(SigexError):
    """A setting is unknown, missing or malformed."""


class InvalidIdentifier(SigexError):
    """An identifier failed its format or check-digit rule.

    The message names the field and the rule, never the value.
    """

    def __init__(self, field: str, kind: str, rule: str) -> None:
        self.field = field
        self.kind = kind
        self.rule = rule
        super().__init__(f"field {field!r}: not a valid {kind} ({rule})")
