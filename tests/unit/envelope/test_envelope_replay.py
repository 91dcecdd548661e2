"""ReplayGuard.withdraw: an id whose processing was rolled back may be admitted again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from sigex.clock import FixedClock
from sigex.envelope import ReplayedMessage, ReplayGuard

NOW = datetime(2027, 2, 1, 10, tzinfo=UTC)


def test_a_withdrawn_id_is_admitted_again_and_then_refused_as_a_replay() -> None:
    guard = ReplayGuard(clock=FixedClock(NOW))
    message_id = uuid.uuid4()
    guard.admit(message_id, NOW)
    with pytest.raises(ReplayedMessage):
        guard.admit(message_id, NOW)
    guard.withdraw(message_id)
    guard.admit(message_id, NOW)
    with pytest.raises(ReplayedMessage):
        guard.admit(message_id, NOW)


def test_withdrawing_an_unknown_id_changes_nothing() -> None:
    guard = ReplayGuard(clock=FixedClock(NOW))
    guard.withdraw(uuid.uuid4())
    assert len(guard) == 0
