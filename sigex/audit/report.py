"""The GDPR article 15 answer for one person: who received what about them, when, why, how.

The report lists every DELIVERED record about the person's pseudonym: the
date, the sender, the recipient, the signal, the purpose, the legal basis, the
agreement (the processing activity) and the names of the fields disclosed,
and whether the recipient acknowledged it. Refusals disclosed nothing and are
only counted. The BSN itself is never printed: the caller already knows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sigex.audit.store import StoredRecord
from sigex.exchange.access_record import AccessRecord, EventKind, format_time

_REFUSALS = frozenset(
    {EventKind.REFUSED_AT_PUBLISH, EventKind.REFUSED_FOR_RECIPIENT, EventKind.DEAD_LETTERED}
)


@dataclass(frozen=True, slots=True)
class Disclosure:
    leaf_index: int
    occurred_at: datetime
    sender: str
    recipient: str
    signal: str
    purpose: str
    legal_basis: str | None
    agreement_id: str | None
    agreement_version: int | None
    disclosed_fields: tuple[str, ...]
    message_id: str
    acknowledged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "occurred_at": format_time(self.occurred_at),
            "sender": self.sender,
            "recipient": self.recipient,
            "signal": self.signal,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "disclosed_fields": list(self.disclosed_fields),
            "message_id": self.message_id,
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True, slots=True)
class AccessReport:
    generated_at: datetime
    disclosures: tuple[Disclosure, ...]
    refusals: int
    tree_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": format_time(self.generated_at),
            "disclosures": [d.to_dict() for d in self.disclosures],
            "refusals": self.refusals,
            "log_tree_size": self.tree_size,
        }


def build_report(
    stored: Iterable[StoredRecord], generated_at: datetime, tree_size: int | None = None
) -> AccessReport:
    """Gather the deliveries (and acknowledgements) among one person's records."""
    records = list(stored)
    acknowledged = {
        (s.record.message_id, s.record.recipient)
        for s in records
        if s.record.kind is EventKind.ACKNOWLEDGED
    }
    disclosures = tuple(
        _disclosure(
            s.leaf_index, s.record, (s.record.message_id, s.record.recipient) in acknowledged
        )
        for s in sorted(records, key=lambda s: (s.record.occurred_at, s.leaf_index))
        if s.record.kind is EventKind.DELIVERED
    )
    refusals = sum(1 for s in records if s.record.kind in _REFUSALS)
    return AccessReport(generated_at, disclosures, refusals, tree_size)


def _disclosure(index: int, record: AccessRecord, acknowledged: bool) -> Disclosure:
    assert record.recipient is not None  # a DELIVERED record always names its recipient
    return Disclosure(
        leaf_index=index,
        occurred_at=record.occurred_at,
        sender=record.sender,
        recipient=record.recipient,
        signal=record.signal,
        purpose=record.purpose,
        legal_basis=record.legal_basis,
        agreement_id=record.agreement_id,
        agreement_version=record.agreement_version,
        disclosed_fields=record.disclosed_fields,
        message_id=record.message_id,
        acknowledged=acknowledged,
    )


def render_text(report: AccessReport, party_names: Mapping[str, str]) -> str:
    """The report as a document a person can read."""

    def name(code: str) -> str:
        full = party_names.get(code)
        return f"{full} ({code})" if full else code

    lines = [
        "Access report (GDPR article 15)",
        "===============================",
        "",
        f"Generated: {format_time(report.generated_at)}",
        "This lists every disclosure of data about you that the signal exchange recorded:",
        "who sent it, who received it, when, for which purpose and on which legal basis.",
        "",
    ]
    if not report.disclosures:
        lines.append("No data about you was disclosed through the exchange.")
    for number, item in enumerate(report.disclosures, start=1):
        agreement = (
            f"{item.agreement_id} version {item.agreement_version}" if item.agreement_id else "-"
        )
        lines += [
            f"{number}. {format_time(item.occurred_at)[:19].replace('T', ' ')} UTC",
            f"   recipient:    {name(item.recipient)}",
            f"   sender:       {name(item.sender)}",
            f"   signal:       {item.signal}",
            f"   purpose:      {item.purpose}",
            f"   legal basis:  {item.legal_basis or '-'}",
            f"   agreement:    {agreement}",
            f"   data fields:  {', '.join(item.disclosed_fields) or '-'}",
            f"   acknowledged: {'yes' if item.acknowledged else 'no'}",
            f"   log record:   {item.leaf_index}",
            "",
        ]
    lines.append(f"Deliveries: {len(report.disclosures)}.")
    if report.refusals:
        lines.append(
            f"In {report.refusals} further case(s) a disclosure was refused; nothing was sent."
        )
    if report.tree_size is not None:
        lines.append(
            f"The records above are part of a tamper-evident log of {report.tree_size} records; "
            "each can be proven with `sigex audit verify --record <log record>`."
        )
    return "\n".join(lines) + "\n"
