"""A delivery as the node hands it to a partner system (``GET /v1/deliveries``, the webhook)."""

from __future__ import annotations

from typing import Any

from sigex.consumers.subscriber import FetchedSignal
from sigex.exchange.protocol import to_json_value


def delivery_json(item: FetchedSignal) -> dict[str, Any]:
    received = item.signal
    return {
        "message_id": received.message_id,
        "trace_id": received.trace_id,
        "signal": received.signal,
        "sender": received.sender,
        "recipient": received.recipient,
        "purpose": received.purpose,
        "legal_basis": received.legal_basis,
        "agreement_id": received.agreement_id,
        "agreement_version": received.agreement_version,
        "retention_days": received.retention_days,
        "sent_at": received.sent_at.isoformat(),
        "decision": {
            "outcome": "PERMIT",
            "decided_at": received.decided_at.isoformat(),
            "policy_version": received.policy_version,
            "fields": sorted(item.decision.fields),
        },
        "fields": to_json_value(dict(received.fields)),
    }
