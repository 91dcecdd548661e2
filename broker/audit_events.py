"""Building access-log records for the exchange's decisions, one per data subject.

Operation ids are derived from the message id, the kind of event, the
recipient and the subject, so a gateway that reprocesses a message after a
crash writes the very same records, and ingestion (idempotent on trace id and
operation id) adds nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from policies.decide import Decision
from sigex.accesslog.record import AccessRecord, EventKind, Outcome


def operation_id(message_id: str, kind: EventKind, recipient: str | None, subject: str) -> str:
    material = f"{message_id}|{kind.value}|{recipient or '-'}|{subject}".encode()
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
) -> list[AccessRecord]:
    """One record per subject pseudonym; the decision (if any) supplies basis and agreement."""
    if outcome is None:
        outcome = Outcome.PERMIT if decision is not None and decision.allowed else Outcome.DENY
    codes = reason_codes or (decision.reason_codes if decision is not None else ())
    fields = tuple(sorted(disclosed)) if outcome is Outcome.PERMIT else ()
    return [
        AccessRecord(
            trace_id=trace_id,
            operation_id=operation_id(message_id, kind, recipient, subject),
            occurred_at=occurred_at,
            kind=kind,
            sender=sender,
            recipient=recipient,
            signal=signal,
            purpose=purpose,
            legal_basis=decision.legal_basis if decision is not None else None,
            agreement_id=decision.agreement_id if decision is not None else None,
            agreement_version=decision.agreement_version if decision is not None else None,
            policy_version=policy_version,
            outcome=outcome,
            reason_codes=tuple(codes),
            disclosed_fields=fields,
            message_id=message_id,
            subject=subject,
        )
        for subject in subjects
    ]
