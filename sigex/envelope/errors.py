"""Errors of the envelope. Every cryptographic or format failure is one opaque EnvelopeError."""

from __future__ import annotations

from sigex.errors import SigexError


class EnvelopeError(SigexError):
    """An envelope could not be sealed, opened or verified.

    The message is the same for every cause, so a caller (or an attacker
    probing the gateway) learns nothing about which check failed; the precise
    cause is logged by the envelope module without personal data.
    """

    def __init__(self, message: str = "envelope rejected") -> None:
        super().__init__(message)


class ReplayedMessage(EnvelopeError):
    """A message id was seen before, or its timestamp is outside the accepted window."""

    def __init__(self) -> None:
        super().__init__("message rejected as a replay")


class ReusedMessageId(ReplayedMessage):
    """A message id seen before, now with different content: never delivered, an alarm."""


class KeyDestroyed(EnvelopeError):
    """The envelope was sealed to an encryption key that has been destroyed (crypto-shredded).

    Its retention has ended: the directory records the key as destroyed, so
    nobody (the recipient included) can open it any more. Which key was
    destroyed, and when, is public in the signed directory, so saying so
    tells a prober nothing new.
    """

    def __init__(self) -> None:
        super().__init__(
            "envelope sealed to a destroyed encryption key: its retention has ended"
            " and it can no longer be opened"
        )
