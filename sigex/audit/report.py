"""The GDPR article 15 answer for one person: who received what about them, when, why, how.

The report lists every DELIVERED record about the person's pseudonym: the
date, the sender, the recipient, the signal, the purpose, the legal basis, the
agreement (the processing activity) and the names of the fields disclosed,
and whether the recipient acknowledged it. Refusals disclosed nothing and are
only counted. The BSN itself is never printed: the caller already knows it.

:func:`citizen_document` words it for the person, in Dutch or English
(:mod:`sigex.audit.report_texts`); :func:`render_text`, the console's HTML page
and :mod:`sigex.audit.report_pdf` each lay that one document out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sigex.audit.report_texts import Language, texts_for
from sigex.audit.store import StoredRecord
from sigex.exchange.access_record import AccessRecord, EventKind, format_time
from sigex.policies.compiled import CompiledPolicy

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


def report_context(party_names: Mapping[str, str], policy: CompiledPolicy | None) -> ReportContext:
    """Names of parties, and (from the policy, when there is one) of purposes and laws."""
    if policy is None:
        return ReportContext(party_names=dict(party_names))
    return ReportContext(
        party_names=dict(party_names),
        purpose_descriptions={code: p.description for code, p in policy.purposes.items()},
        basis_citations={code: b.citation for code, b in policy.legal_bases.items()},
        zone=policy.zone,
    )


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


@dataclass(frozen=True, slots=True)
class ReportItem:
    """One disclosure as the citizen reads it: a heading and labelled lines."""

    heading: str
    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReportDocument:
    """The article 15 report in one language, ready for text, HTML or PDF."""

    language: Language
    title: str
    generated: str
    intro: tuple[str, ...]
    items: tuple[ReportItem, ...]
    closing: tuple[str, ...]
    objection_heading: str
    objection: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the report needs beyond the log: names of parties, purposes and laws, the zone."""

    party_names: Mapping[str, str] = field(default_factory=dict)
    purpose_descriptions: Mapping[str, str] = field(default_factory=dict)
    basis_citations: Mapping[str, str] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Amsterdam"))


_MONTHS = {
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def _moment(moment: datetime, language: Language, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    month = _MONTHS[language][local.month - 1]
    return f"{local.day} {month} {local.year}, {local:%H:%M}"


def citizen_document(
    report: AccessReport, language: Language, context: ReportContext
) -> ReportDocument:
    """The report written for the person it is about, in ``language`` (``nl`` or ``en``)."""
    texts = texts_for(language)

    def party(code: str) -> str:
        full = context.party_names.get(code)
        return f"{full} ({code})" if full else code

    def purpose(code: str) -> str:
        described = texts.purposes.get(code) or context.purpose_descriptions.get(code)
        return f"{described} ({code})" if described else code

    def basis(code: str | None) -> str:
        if code is None:
            return "-"
        citation = context.basis_citations.get(code)
        return f"{citation} ({code})" if citation else code

    items = []
    for number, item in enumerate(report.disclosures, start=1):
        agreement = (
            f"{item.agreement_id}, {texts.version} {item.agreement_version}"
            if item.agreement_id
            else "-"
        )
        items.append(
            ReportItem(
                f"{texts.item} {number}",
                (
                    (texts.when, _moment(item.occurred_at, language, context.zone)),
                    (texts.recipient, party(item.recipient)),
                    (texts.sender, party(item.sender)),
                    (texts.signal, texts.signals.get(item.signal, item.signal)),
                    (texts.purpose, purpose(item.purpose)),
                    (texts.legal_basis, basis(item.legal_basis)),
                    (texts.agreement, agreement),
                    (texts.fields, ", ".join(item.disclosed_fields) or "-"),
                    (texts.acknowledged, texts.yes if item.acknowledged else texts.no),
                    (texts.log_record, str(item.leaf_index)),
                ),
            )
        )
    closing = [texts.count.format(count=len(report.disclosures))]
    if not report.disclosures:
        closing.insert(0, texts.none_disclosed)
    if report.refusals:
        closing.append(texts.refusals.format(count=report.refusals))
    if report.tree_size is not None:
        closing.append(texts.integrity.format(size=report.tree_size))
    closing.append(texts.time_zone_note)
    return ReportDocument(
        language=language,
        title=texts.title,
        generated=f"{texts.generated}: {_moment(report.generated_at, language, context.zone)}",
        intro=texts.intro,
        items=tuple(items),
        closing=tuple(closing),
        objection_heading=texts.object_heading,
        objection=texts.objection,
    )


def render_text(document: ReportDocument) -> str:
    """The report as plain text a person can read."""
    lines = [document.title, "=" * len(document.title), "", document.generated, ""]
    for paragraph in document.intro:
        lines += [*textwrap.wrap(paragraph, 88), ""]
    for item in document.items:
        width = max(len(label) for label, _ in item.lines) + 1
        lines.append(item.heading)
        lines += [f"   {(label + ':').ljust(width)} {value}" for label, value in item.lines]
        lines.append("")
    for paragraph in document.closing:
        lines += [*textwrap.wrap(paragraph, 88), ""]
    lines += [document.objection_heading, "-" * len(document.objection_heading)]
    for paragraph in document.objection:
        lines += [*textwrap.wrap(paragraph, 88), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
