"""The indexer's rules for what a receipts topic may carry (pure; no broker involved)."""

from __future__ import annotations

from dataclasses import replace

from sigex.audit.indexer import (
    FORGED_OPERATION_ID,
    NOT_ITS_OWN,
    receipt_allowed,
    receipt_refusal,
    subscription,
)
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.audit_events import operation_id

from .conftest import RecordFactory


def written_by(record: AccessRecord, writer: str, source: str | None = None) -> AccessRecord:
    """The record with the operation id ``writer`` derives for it."""
    derived = operation_id(
        record.message_id,
        record.kind,
        record.recipient,
        record.subject,
        writer=writer,
        source=source,
    )
    return replace(record, operation_id=derived)


def test_a_party_may_only_speak_for_itself_on_its_receipts_topic(
    make_record: RecordFactory,
) -> None:
    own_ack = written_by(
        make_record(kind=EventKind.ACKNOWLEDGED, recipient="GM0363", disclosed_fields=()),
        "GM0363",
    )
    assert receipt_allowed("sigex.receipts.GM0363", own_ack)
    assert not receipt_allowed("sigex.receipts.NLA", own_ack)
    refused = written_by(
        make_record(kind=EventKind.REFUSED_AT_PUBLISH, sender="UWV", recipient=None), "UWV"
    )
    assert receipt_allowed("sigex.receipts.UWV", refused)
    assert not receipt_allowed("sigex.receipts.GM0363", refused)
    delivered = make_record(recipient="GM0363")
    assert not receipt_allowed("sigex.receipts.GM0363", delivered)  # only the gateway says so
    assert receipt_allowed("sigex.audit", delivered)
    dead = make_record(kind=EventKind.DEAD_LETTERED, outcome=Outcome.ERROR, disclosed_fields=())
    assert not receipt_allowed("sigex.receipts.RVIG", dead)


def test_the_subscription_matches_the_audit_and_receipts_topics_only() -> None:
    import re

    pattern = re.compile(subscription("sigex.audit", "sigex.receipts."))
    assert pattern.match("sigex.audit")
    assert pattern.match("sigex.receipts.GM0363")
    assert not pattern.match("sigex.audit.checkpoints")
    assert not pattern.match("sigex.receipts.")
    assert not pattern.match("sigex.laa.frequent-mover.out.GM0363")


def test_a_party_cannot_take_an_operation_id_of_another_writer(make_record: RecordFactory) -> None:
    """The attack of issue 17, finding 1, at the rule: a refusal keyed like the gateway's record.

    A sender knows the trace id it sends, the message id it seals, its own
    ingress offsets and (from earlier deliveries) a subject's pseudonym, so it
    can compute the operation id the gateway will give its PUBLISHED record.
    Written on its own receipts topic under that key, it must be refused.
    """
    published = make_record(kind=EventKind.PUBLISHED, sender="NLA", recipient=None)
    gateway_key = written_by(published, "GATEWAY", "sigex.x.in.NLA/0/7").operation_id
    forged = replace(
        make_record(kind=EventKind.REFUSED_AT_PUBLISH, sender="NLA", recipient=None),
        trace_id=published.trace_id,
        message_id=published.message_id,
        subject=published.subject,
        operation_id=gateway_key,
    )
    assert receipt_refusal("sigex.receipts.NLA", forged) == FORGED_OPERATION_ID
    # the same event under the key derived for NLA itself stands, and cannot collide
    honest = written_by(forged, "NLA")
    assert receipt_refusal("sigex.receipts.NLA", honest) is None
    assert honest.key != (published.trace_id, gateway_key)
    # a receipt naming another recipient, or a gateway kind, is not the party's to write
    other = written_by(make_record(kind=EventKind.RECEIVED, recipient="UWV"), "UWV")
    assert receipt_refusal("sigex.receipts.NLA", other) == NOT_ITS_OWN
    gateway_kind = written_by(make_record(kind=EventKind.DELIVERED, recipient="NLA"), "NLA")
    assert receipt_refusal("sigex.receipts.NLA", gateway_kind) == NOT_ITS_OWN


def test_operation_ids_differ_per_writer_and_per_ingress_record(
    make_record: RecordFactory,
) -> None:
    record = make_record(kind=EventKind.DELIVERED, recipient="GM0363")
    keys = {
        written_by(record, "GATEWAY", "sigex.x.in.RVIG/0/1").operation_id,
        written_by(record, "GATEWAY", "sigex.x.in.RVIG/0/2").operation_id,  # a replayed copy
        written_by(record, "GATEWAY").operation_id,
        written_by(record, "RVIG").operation_id,
        written_by(record, "GM0363").operation_id,
    }
    assert len(keys) == 5
    # separators inside a field cannot shift material from one field into another
    a = operation_id("m|DELIVERED", EventKind.RECEIVED, "X", "s", writer="W")
    b = operation_id("m", EventKind.RECEIVED, "DELIVERED|X", "s", writer="W")
    assert a != b


def test_no_party_can_write_a_consultation_on_its_receipts_topic(
    make_record: RecordFactory,
) -> None:
    # consultations are the audit service's own records, written straight to the store: a
    # party that forges one (to frame an auditor, or to bury a look-up among fakes) is refused
    for party in ("NLA", "AUDITOR", "GM0363"):
        forged = make_record(
            kind=EventKind.CONSULTED,
            sender=party,
            recipient=None,
            signal="console.search",
            purpose="LOG_AUDIT",
            legal_basis=None,
            agreement_id=None,
            agreement_version=None,
            disclosed_fields=(),
        )
        assert not receipt_allowed(f"sigex.receipts.{party}", forged)
