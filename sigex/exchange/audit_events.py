"""Building access-log records for the exchange's decisions, one per data subject.

Operation ids are derived, never chosen, and each **writer has a namespace of
its own**: the material hashed is the writer (the party whose topic carries
the record: ``GATEWAY`` for ``sigex.audit``, the party itself for
``sigex.receipts.<PARTY>``), the kind of event, the message id, the
recipient, the subject and, for the gateway, the ingress record it decided
(topic, partition, offset). So

- a gateway that reprocesses an ingress record after a crash writes the very
  same records, and ingestion (idempotent on trace id and operation id) adds
  nothing twice;
- no party can write a record whose key is one the gateway will use: the
  audit indexer recomputes the operation id of every record a party writes
  with that party as the writer and rejects any other (see
  :func:`sigex.audit.indexer.receipt_allowed`), so a party can neither
  collide with nor pre-empt another writer's records;
- a replayed copy of a message (another ingress offset) gets records of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.policies.decide import Decision
from sigex.roles import Role

#: kinds a party writes about itself; every other kind is the gateway's
_RECIPIENT_SIDE = frozenset({EventKind.RECEIVED, EventKind.ACKNOWLEDGED})
_SENDER_SIDE = frozenset({EventKind.REFUSED_AT_PUBLISH})
_OPERATION_NAMESPACE = "sigex operation v2"
#: made once (``json.dumps`` with arguments builds an encoder per call); same bytes
_MATERIAL = json.JSONEncoder(separators=(",", ":"))


class Basis(NamedTuple):
    """The legal basis and agreement an event happened under (all None without one)."""

    legal_basis: str | None
    agreement_id: str | None
    agreement_version: int | None


def writer_of(kind: EventKind, sender: str, recipient: str | None) -> str:
    """The only party that may write a record of this kind: its operation-id namespace."""
    if kind in _RECIPIENT_SIDE:
        return recipient or "UNKNOWN"
    if kind in _SENDER_SIDE:
        return sender
    return Role.GATEWAY


def operation_id(
    message_id: str,
    kind: EventKind,
    recipient: str | None,
    subject: str,
    *,
    writer: str,
    source: str | None = None,
) -> str:
    """The operation id of one event, in ``writer``'s namespace (unambiguous JSON material)."""
    material = _MATERIAL.encode(
        [_OPERATION_NAMESPACE, writer, kind.value, message_id, recipient, subject, source]
    ).encode()
    return hashlib.sha256(material).hexdigest()[:16]


def access_records(
    *,
    kind: EventKind,
    trace_id: str,
    message_id: str,
    occurred_at: datetime,
    sender: str,
    recipient: str | None,
    signal: str,
    purpose: str,
    policy_version: str,
    subjects: Iterable[str],
    decision: Decision | None = None,
    outcome: Outcome | None = None,
    reason_codes: tuple[str, ...] = (),
    disclosed: Iterable[str] = (),
    source: str | None = None,
    basis: Basis | None = None,
) -> list[AccessRecord]:
    """One record per subject pseudonym; the decision (if any) supplies basis and agreement.

    ``source`` names what the event is about beyond the message id (the
    gateway passes its ingress record ``topic/partition/offset``). ``basis`` gives the
    legal basis and agreement when there is no decision object (a recipient's receipt
    takes them from the gateway's signed decision).
    """
    if decision is not None:
        basis = Basis(decision.legal_basis, decision.agreement_id, decision.agreement_version)
    elif basis is None:
        basis = Basis(None, None, None)
    if outcome is None:
        outcome = Outcome.PERMIT if decision is not None and decision.allowed else Outcome.DENY
    codes = reason_codes or (decision.reason_codes if decision is not None else ())
    fields = tuple(sorted(disclosed)) if outcome is Outcome.PERMIT else ()
    return [
        AccessRecord(
            trace_id=trace_id,
            operation_id=operation_id(
                message_id,
                kind,
                recipient,
                subject,
                writer=writer_of(kind, sender, recipient),
                source=source,
            ),
            occurred_at=occurred_at,
            kind=kind,
            sender=sender,
            recipient=recipient,
            signal=signal,
            purpose=purpose,
            legal_basis=basis.legal_basis,
            agreement_id=basis.agreement_id,
            agreement_version=basis.agreement_version,
            policy_version=policy_version,
            outcome=outcome,
            reason_codes=tuple(codes),
            disclosed_fields=fields,
            message_id=message_id,
            subject=subject,
        )
        for subject in subjects
    ]
