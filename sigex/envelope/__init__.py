"""The sealed envelope, version 1: signed per batch, minimisable per field, encrypted per recipient.

``docs/envelope.md`` specifies the format byte by byte. The public API:

* :class:`Sealer` ``.seal(records)`` / ``.seal_messages(records)`` (publisher) and
  ``.forward(items)`` (gateway); :func:`derived_message_id` (an idempotent
  submission's id) and :func:`submission_size` (a sealed submission's length);
* :class:`Opener` ``.open_submission(envelope, topic=...)`` (gateway),
  ``.open_delivery(envelope, topic=...)`` (recipient) and ``.verify(message)``;
* :func:`project` keeps only some fields of an opened message;
* :class:`ReplayGuard` and :func:`pseudonym` (the Kafka record key).

Every failure is an :class:`EnvelopeError` with the same message, except an
envelope sealed to a key the directory lists as destroyed
(:class:`KeyDestroyed`, a subclass), which is public knowledge anyway.
"""

from sigex.envelope.errors import (
    EnvelopeError,
    KeyDestroyed,
    ReplayedMessage,
    ReusedMessageId,
)
from sigex.envelope.model import (
    DeliveredMessage,
    Field,
    Forwarding,
    OpenedMessage,
    OutgoingRecord,
    Proof,
    SealContext,
)
from sigex.envelope.opening import Opener
from sigex.envelope.projection import project
from sigex.envelope.pseudonym import pseudonym
from sigex.envelope.replay import ReplayGuard
from sigex.envelope.sealing import (
    DEFAULT_KEY_PERIOD,
    SealedMessage,
    Sealer,
    derived_message_id,
    submission_size,
)

__all__ = [
    "DEFAULT_KEY_PERIOD",
    "DeliveredMessage",
    "EnvelopeError",
    "Field",
    "Forwarding",
    "KeyDestroyed",
    "OpenedMessage",
    "Opener",
    "OutgoingRecord",
    "Proof",
    "ReplayGuard",
    "ReplayedMessage",
    "ReusedMessageId",
    "SealContext",
    "SealedMessage",
    "Sealer",
    "derived_message_id",
    "project",
    "pseudonym",
    "submission_size",
]
