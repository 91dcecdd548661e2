"""Access events a party writes itself (refusals at publish), sealed for the audit service.

A publisher that refuses a record before it leaves must still leave a trace
in the access log, one record per data subject. It holds the BSNs but not the
audit service's pseudonym key, so it seals the event and the subjects for the
party ``AUDIT`` with the ordinary envelope (signed by the publisher, so nobody
can write refusals in its name); the audit indexer opens it, pseudonymises the
subjects and appends the records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sigex.canonical import canonical_json
from sigex.clock import Clock
from sigex.envelope import Opener, OutgoingRecord, SealContext, Sealer
from sigex.exchange.access_record import AccessRecord, EventKind
from sigex.exchange.audit_events import operation_id
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.identity import load_directory, load_party
from sigex.roles import Role

SEALED_EVENT_HEADER = "sigex-event"
SEALED_EVENT = b"sealed"
_AGREEMENT_MARK = "party-event"


def seal_party_events(
    sealer: Sealer,
    *,
    topic: str,
    signal: str,
    schema_fingerprint: str,
    sender: str,
    purpose: str,
    events: Sequence[tuple[dict[str, Any], Sequence[str]]],
) -> tuple[bytes, ...]:
    """Seal each (record without subject, subjects in clear) for the audit service."""
    context = SealContext(
        topic=topic,
        signal=signal,
        schema_fingerprint=schema_fingerprint,
        sender=sender,
        recipient=Role.AUDIT,
        purpose=purpose,
        agreement=_AGREEMENT_MARK,
    )
    records = [
        OutgoingRecord.of(
            context,
            {
                "event": canonical_json(event),
                "subjects": json.dumps(sorted(subjects)).encode(),
            },
        )
        for event, subjects in events
    ]
    return sealer.seal(records) if records else ()


def open_party_event(
    opener: Opener, envelope: bytes, *, topic: str, party: str
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Open a sealed party event; the signer must be the party whose topic it came from."""
    message = opener.open_submission(envelope, topic=topic)
    if message.sender != party:
        raise ValueError("a party event signed by another party")
    fields = message.disclosed
    event = json.loads(fields["event"])
    subjects = json.loads(fields["subjects"])
    if not isinstance(event, dict) or not isinstance(subjects, list):
        raise ValueError("a party event of the wrong shape")
    if not all(isinstance(subject, str) for subject in subjects):
        raise ValueError("a party event with a subject that is not text")
    if party not in (event.get("sender"), event.get("recipient")):
        raise ValueError("a party event about other parties")
    return event, tuple(subjects)


def record_for_subject(
    event: dict[str, Any], subject_pseudonym: str, operation: str
) -> AccessRecord:
    """The access record of a party event for one pseudonymised subject."""
    return AccessRecord.from_dict(
        {**event, "subject": subject_pseudonym, "operation_id": operation}
    )


class PartyEventReader:
    """The audit service's side: opens sealed party events into access records."""

    def __init__(self, opener: Opener, pseudonyms: SubjectPseudonyms) -> None:
        self._opener = opener
        self._pseudonyms = pseudonyms

    @classmethod
    def for_audit_service(cls, state_dir: Path, clock: Clock) -> PartyEventReader:
        return cls(
            Opener(
                identity=load_party(state_dir, Role.AUDIT),
                directory=load_directory(state_dir),
                clock=clock,
            ),
            SubjectPseudonyms(load_pseudonym_key(state_dir)),
        )

    def records(self, envelope: bytes, *, topic: str, party: str) -> list[AccessRecord]:
        """One access record per subject; raises ValueError or EnvelopeError when unusable."""
        event, subjects = open_party_event(self._opener, envelope, topic=topic, party=party)
        kind = EventKind(event["kind"])
        pseudonyms = [self._pseudonyms.pseudonym(s) for s in subjects] or [
            self._pseudonyms.pseudonym(str(event["message_id"]))
        ]
        return [
            record_for_subject(
                event,
                p,
                operation_id(
                    str(event["message_id"]), kind, event.get("recipient"), p, writer=party
                ),
            )
            for p in pseudonyms
        ]
