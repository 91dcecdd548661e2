"""A municipality that answers frequent-mover signals with investigation outcomes.

A real municipality investigates the address; the reference responder picks an
outcome deterministically from the signal id, so the demo is repeatable, and
publishes it back to RvIG. It carries no personal data: the outcome refers to
the original signal by its id.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sigex.partners.consumers.inbox import Inbox
from sigex.producers.publisher import Publisher, PublishResult

FREQUENT_MOVER = "laa.frequent-mover"
OUTCOME = "laa.investigation-outcome"
PURPOSE = "LAA_TERUGKOPPELING"
OUTCOMES = (
    "ADDRESS_CONFIRMED",
    "ADDRESS_CORRECTED",
    "PERSON_DEREGISTERED",
    "NOT_INVESTIGATED",
    "INVESTIGATION_ONGOING",
)


def outcome_for(signal_id: str) -> str:
    digest = hashlib.sha256(signal_id.encode()).digest()
    return OUTCOMES[digest[0] % len(OUTCOMES)]


def answer_frequent_movers(
    municipality: str, inbox: Inbox, publisher: Publisher, now: datetime
) -> PublishResult:
    """Publish an outcome for every open frequent-mover signal in ``inbox``."""
    items = inbox.open_items(FREQUENT_MOVER)
    records = [
        {
            "signal_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sigex:outcome:{message_id}")),
            "detected_at": now,
            "in_reply_to": str(fields["signal_id"]),
            "municipality": municipality,
            "outcome": outcome_for(str(fields["signal_id"])),
            "concluded_on": now.date(),
        }
        for message_id, fields in items
    ]
    if not records:
        return PublishResult()
    result = publisher.publish(OUTCOME, PURPOSE, records)
    refused = {refusal.index for refusal in result.refused}
    for index, (message_id, _) in enumerate(items):
        if index not in refused:
            inbox.mark_done(message_id)
    return result
