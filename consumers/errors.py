"""Errors of the receiving side."""

from __future__ import annotations

from sigex.errors import SigexError


class ConsumerError(SigexError):
    """The subscriber could not receive or hand over a signal."""


class DeliveryRefused(ConsumerError):
    """A delivery this party must not accept; ``code`` says why (no personal data)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"delivery refused: {code}")


class SubscriberStalled(ConsumerError):
    """Asked to drain, the subscriber could not take signals that wait for it."""


class AccessRefused(ConsumerError):
    """The broker lets this party see none of the delivery topics its agreements in force
    give it: its certificate is revoked (or of an old key generation), or the ACLs were
    never provisioned. Waiting would only ever drain nothing."""
