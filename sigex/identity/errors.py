"""Errors of party identity: key files, the federation and the signed party directory."""

from __future__ import annotations

from sigex.errors import SigexError


class IdentityError(SigexError):
    """A party's keys or certificates could not be created or loaded."""


class UnknownParty(IdentityError):
    """The party code is not in the parties file or the directory."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown party {code!r}")


class DirectoryError(IdentityError):
    """The party directory is missing, malformed, or its operator signature does not verify."""


class NoValidKey(IdentityError):
    """No key of the party is valid (in its period and not revoked) at the time asked about."""

    def __init__(self, code: str, purpose: str) -> None:
        self.code = code
        self.purpose = purpose
        super().__init__(f"party {code!r} has no valid {purpose} key at that time")


class InsecureKeyFile(IdentityError):
    """A private key file may be read by group or others; it is refused, not used."""

    def __init__(self, path: object, mode: int) -> None:
        self.path = path
        self.mode = mode
        super().__init__(
            f"private key file {path} has mode {mode:04o} (readable by group or others);"
            f" refusing to use it: run 'chmod 600 {path}'"
        )


class MissingKeyFile(IdentityError):
    """A private key file that should exist does not."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(f"private key file {path} does not exist")


class KeyDestructionError(IdentityError):
    """Retired keys could not be destroyed as the directory says they should be."""
