"""ReplayGuard: refuse a message id seen before, or a timestamp outside the accepted window."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import NoReturn
from uuid import UUID

from sigex.clock import Clock
from sigex.envelope.errors import ReplayedMessage, ReusedMessageId
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
        #: message id -> (signed timestamp, digest of its content or b"")
        self._seen: OrderedDict[bytes, tuple[datetime, bytes]] = OrderedDict()
        self._floor: datetime | None = None

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, message_id: UUID | bytes) -> bool:
        return _key(message_id) in self._seen

    def admit(self, message_id: UUID | bytes, timestamp: datetime, digest: bytes = b"") -> None:
        """Remember ``message_id``; raises ReplayedMessage when it must be refused.

        ``digest`` identifies the message's content: an id seen before with a
        different digest raises :class:`ReusedMessageId` (someone reused an id
        for other content), with the same digest plain :class:`ReplayedMessage`.
        """
        key = _key(message_id)
        now = self._clock.now()
        self._expire(now)
        if timestamp > now + self._max_skew:
            self._refuse("from_the_future")
        if timestamp < now - self._window:
            self._refuse("older_than_window")
        if self._floor is not None and timestamp <= self._floor:
            self._refuse("older_than_forgotten_ids")
        if key in self._seen:
            if self._seen[key][1] != digest:
                _log.error("envelope_message_id_reused")
                raise ReusedMessageId()
            self._refuse("seen_before")
        self._remember(key, timestamp, digest)

    def remember(self, message_id: UUID | bytes, timestamp: datetime, digest: bytes = b"") -> None:
        """Take in an id admitted elsewhere (restored from a durable ledger); never raises.

        An id already outside the window is not kept: its timestamp refuses it anyway.
        """
        if timestamp >= self._clock.now() - self._window:
            self._remember(_key(message_id), timestamp, digest)

    def _remember(self, key: bytes, timestamp: datetime, digest: bytes) -> None:
        self._seen[key] = (timestamp, digest)
        while len(self._seen) > self._capacity:
            _, (forgotten, _digest) = self._seen.popitem(last=False)
            if self._floor is None or forgotten > self._floor:
                self._floor = forgotten

    def withdraw(self, message_id: UUID | bytes) -> None:
        """Forget an admitted id whose processing was rolled back, so it may come again."""
        self._seen.pop(_key(message_id), None)

    def _expire(self, now: datetime) -> None:
        # ids are kept in arrival order; drop leading ones whose time left the window
        horizon = now - self._window
        while self._seen:
            key, (seen_at, _digest) = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[key]

    @staticmethod
    def _refuse(reason: str) -> NoReturn:
        _log.warning("envelope_replay_refused", reason=reason)
        raise ReplayedMessage()


def _key(message_id: UUID | bytes) -> bytes:
    return message_id.bytes if isinstance(message_id, UUID) else bytes(message_id)
