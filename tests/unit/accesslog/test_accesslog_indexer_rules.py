"""The indexer's rules for what a receipts topic may carry (pure; no broker involved)."""

from __future__ import annotations

from broker.audit_indexer import receipt_allowed, subscription
from sigex.accesslog.record import EventKind, Outcome

from .conftest import RecordFactory


def test_a_party_may_only_speak_for_itself_on_its_receipts_topic(
    make_record: RecordFactory,
) -> None:
    own_ack = make_record(kind=EventKind.ACKNOWLEDGED, recipient="GM0363", disclosed_fields=())
    assert receipt_allowed("sigex.receipts.GM0363", own_ack)
    assert not receipt_allowed("sigex.receipts.NLA", own_ack)
    refused = make_record(kind=EventKind.REFUSED_AT_PUBLISH, sender="UWV", recipient=None)
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
