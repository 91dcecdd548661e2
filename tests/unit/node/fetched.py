"""FetchedSignal values for the node's unit tests (what the Subscriber hands the pump)."""

from __future__ import annotations

from datetime import UTC, datetime

from sigex.consumers.subscriber import FetchedSignal, ReceivedSignal
from sigex.exchange.protocol import DeliveryDecision

AT = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def fetched(
    message_id: str,
    offset: int,
    *,
    partition: int = 0,
    topic: str = "sigex.laa.frequent-mover.out.GM0363",
    purpose: str = "LAA_ADRESKWALITEIT",
    signal: str = "laa.frequent-mover",
) -> FetchedSignal:
    received = ReceivedSignal(
        message_id=message_id,
        trace_id="ab" * 16,
        signal=signal,
        sender="RVIG",
        recipient="GM0363",
        purpose=purpose,
        agreement_id="LAA-RVIG-GM",
        agreement_version=1,
        legal_basis="WET_BRP",
        policy_version="2027.1",
        retention_days=365,
        decided_at=AT,
        sent_at=AT,
        fields={"municipality": "GM0363"},
    )
    decision = DeliveryDecision(
        message_id=message_id,
        trace_id="ab" * 16,
        recipient="GM0363",
        purpose=purpose,
        agreement_id="LAA-RVIG-GM",
        agreement_version=1,
        legal_basis="WET_BRP",
        policy_version="2027.1",
        fields=("municipality",),
        retention_days=365,
        subjects=(),
    )
    return FetchedSignal(received, topic, partition, offset, decision)
