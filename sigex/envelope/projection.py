"""Projection: keep only some fields of an opened message, with their proofs intact."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from sigex.envelope.model import Field, OpenedMessage


def project(message: OpenedMessage, keep: Collection[str]) -> OpenedMessage:
    """A copy of ``message`` where only the fields named in ``keep`` are disclosed.

    Withheld fields keep their name and commitment (so the sender's signature
    still checks) but lose value and salt. Names in ``keep`` that the message
    does not carry are ignored: a projection can only disclose less.
    """
    wanted = frozenset(keep)
    return replace(
        message,
        fields=tuple(
            field if field.name in wanted else Field(field.name, field.commitment)
            for field in message.fields
        ),
    )
