"""Projection: keep only some fields of an opened message, with their proofs intact."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from sigex.envelope.model import OpenedMessage


def project(message: OpenedMessage, keep: Collection[str]) -> OpenedMessage:
    """A copy of ``message`` where only the fields named in ``keep`` are disclosed.

    Withheld fields keep their name and commitment (so the sender's signature
    still checks) but lose value and salt. Names in ``keep`` that the message
    does not carry are ignored: a projection can only disclose less.
    """
    wanted = frozenset(keep)
    kept = [name in wanted for name in message.names]
    return replace(
        message,
        salts=tuple(s if k else None for s, k in zip(message.salts, kept, strict=True)),
        field_values=tuple(
            v if k else None for v, k in zip(message.field_values, kept, strict=True)
        ),
    )
