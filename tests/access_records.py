"""One DELIVERED access record for tests that need a record but not a particular one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sigex.exchange.access_record import AccessRecord, EventKind, Outcome

BASE_TIME = datetime(2027, 2, 1, tzinfo=UTC)


def delivered_record(number: int, subject: str, **changes: Any) -> AccessRecord:
    """RVIG's frequent-mover signal delivered to GM0363; ``number`` makes ids and time unique."""
    fields: dict[str, Any] = dict(
        trace_id=f"{number + 1:032x}",  # never all zeros
        operation_id=f"{number:016x}",
        occurred_at=BASE_TIME + timedelta(seconds=number),
        kind=EventKind.DELIVERED,
        sender="RVIG",
        recipient="GM0363",
        signal="laa.frequent-mover",
        purpose="LAA_SIGNAAL",
        legal_basis="NL.WBRP.LAA",
        agreement_id="AGR-LAA-GM0363",
        agreement_version=1,
        policy_version="2027.02.1",
        outcome=Outcome.PERMIT,
        reason_codes=(),
        disclosed_fields=("bsn",),
        message_id=f"00000000-0000-0000-0000-{number:012x}",
        subject=subject,
    )
    return AccessRecord(**(fields | changes))
