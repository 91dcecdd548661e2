"""ReplayGuard: refuse a message id seen before, or a timestamp outside the accepted window."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import NoReturn
from uuid import UUID

from sigex.clock import Clock
from sigex.envelope.errors import ReplayedMessage
from sigex.logs import get_logger

_log = get_logger("sigex.envelope")


class ReplayGuard:
    """A bounded memory of seen message ids, with a window and a maximum clock skew.

    A message is admitted once, when its signed timestamp is no further than
    ``max_skew`` in the future and no older than ``window``. Ids are remembered
    until they leave the window, or until ``capacity`` is reached; then the
    oldest are forgotten and the guard refuses anything not newer than what it
    forgot, so forgetting never lets a replay through.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        window: timedelta = timedelta(days=1),
        max_skew: timedelta = timedelta(minutes=5),
        capacity: int = 1_000_000,
    ) -> None:
        if capacity < 1 or window <= timedelta(0) or max_skew < timedelta(0):
            raise ValueError("capacity, window and max_skew must be positive")
        self._clock = clock
        self._window = window
        self._max_skew = max_skew
        self._capacity = capacity
        self._seen: OrderedDict[bytes, datetime] = OrderedDict()
        self._floor: datetime | None = None

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, message_id: UUID | bytes, timestamp: datetime) -> None:
        """Remember ``message_id``; raises ReplayedMessage when it must be refused."""
        key = message_id.bytes if isinstance(message_id, UUID) else bytes(message_id)
        now = self._clock.now()
        self._expire(now)
        if timestamp > now + self._max_skew:
            self._refuse("from_the_future")
        if timestamp < now - self._window:
            self._refuse("older_than_window")
        if self._floor is not None and timestamp <= self._floor:
            self._refuse("older_than_forgotten_ids")
        if key in self._seen:
            self._refuse("seen_before")
        self._seen[key] = timestamp
        while len(self._seen) > self._capacity:
            _, forgotten = self._seen.popitem(last=False)
            if self._floor is None or forgotten > self._floor:
                self._floor = forgotten

    def withdraw(self, message_id: UUID | bytes) -> None:
        """Forget an admitted id whose processing was rolled back, so it may come again."""
        key = message_id.bytes if isinstance(message_id, UUID) else bytes(message_id)
        self._seen.pop(key, None)

    def _expire(self, now: datetime) -> None:
        # ids are kept in arrival order; drop leading ones whose time left the window
        horizon = now - self._window
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[key]

    @staticmethod
    def _refuse(reason: str) -> NoReturn:
        _log.warning("envelope_replay_refused", reason=reason)
        raise ReplayedMessage()
