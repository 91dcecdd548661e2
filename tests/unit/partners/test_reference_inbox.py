"""The reference SQLite inbox gives back the message ids it holds (the subscriber's memory)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sigex.consumers.subscriber import ReceivedSignal
from sigex.partners.consumers.inbox import Inbox

AT = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def received(message_id: str) -> ReceivedSignal:
    return ReceivedSignal(
        message_id=message_id,
        trace_id="0" * 31 + "1",
        signal="payroll.bsn-mismatch",
        sender="UWV",
        recipient="GM0363",
        purpose="BRP_TERUGMELDING",
        agreement_id="AGR-X",
        agreement_version=1,
        legal_basis="NL.X",
        policy_version="1",
        retention_days=30,
        decided_at=AT,
        sent_at=AT,
        fields={"signal_id": message_id},
    )


def test_the_inbox_gives_back_the_ids_it_keeps_latest_last(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "GM0363.sqlite")
    for n in range(5):
        inbox.store(received(f"m{n}"))
    inbox.store(received("m1"))  # a redelivery changes nothing
    assert inbox.message_ids() == ["m0", "m1", "m2", "m3", "m4"]
    assert inbox.message_ids(limit=2) == ["m3", "m4"]
    inbox.close()
