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
