"""The node's inbox: signals taken from the broker, lent to callers until they acknowledge.

The delivery pump (:mod:`sigex.node.pump`) fills it with what the Subscriber
fetched (opened, checked, receipted as received). A caller leases signals
(``GET /v1/deliveries``); a lease that runs out without an acknowledgement
puts the signal back, to be offered again. An acknowledgement
(``POST /v1/deliveries/ack``) is answered once the pump has written its
receipts and committed the offsets it allows: per partition, the committed
position never passes a signal that is not acknowledged.

No Kafka here: the inbox is plain data under one lock, so it is tested alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from sigex.consumers.subscriber import FetchedBatch, FetchedSignal

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class AckResult:
    """What an acknowledgement did: made durable, or not known to this node (any more)."""

    acknowledged: tuple[str, ...]
    unknown: tuple[str, ...]


@dataclass
class _Entry:
    item: FetchedSignal
    lease_until: float | None = None
    leased_to: str | None = None
    acked: bool = False


@dataclass
class _Track:
    """One partition: offsets of entries not yet settled, and the next offset to read."""

    open: set[int] = field(default_factory=set)
    next: int = 0
    committed: int | None = None

    def position(self, without: Iterable[int] = ()) -> int:
        remaining = self.open.difference(without)
        return min(remaining) if remaining else self.next


@dataclass
class Settlement:
    """Acknowledged signals and the positions to commit after their receipts, in one go."""

    signals: list[FetchedSignal]
    positions: dict[Partition, int]
    waiters: list[tuple[Future[AckResult], tuple[str, ...], tuple[str, ...]]]


class DeliveryInbox:
    """Signals fetched and not yet acknowledged, at most ``capacity`` at a time."""

    def __init__(
        self,
        capacity: int = 1000,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}  # by message id, in fetch order
        self._tracks: dict[Partition, _Track] = {}
        self._waiters: list[tuple[Future[AckResult], tuple[str, ...], tuple[str, ...]]] = []
        self._listeners: list[Callable[[], None]] = []

    # -- the pump's side -------------------------------------------------------------------------

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the pump's thread) whenever signals become available."""
        self._listeners.append(callback)

    def room(self) -> int:
        with self._lock:
            return max(0, self.capacity - len(self._entries))

    def add(self, batch: FetchedBatch) -> None:
        """Take in what the subscriber fetched; positions it settled itself may be committed."""
        added = False
        with self._lock:
            for topic, partition, offset in batch.settled:
                self._track((topic, partition), offset)
            for item in batch.signals:
                track = self._track((item.topic, item.partition), item.offset)
                if item.signal.message_id in self._entries:
                    continue  # fetched again after a rejoin: the entry we hold stands
                track.open.add(item.offset)
                self._entries[item.signal.message_id] = _Entry(item)
                added = True
        if added:
            self._notify()

    def _track(self, partition: Partition, offset: int) -> _Track:
        track = self._tracks.setdefault(partition, _Track(next=offset))
        track.next = max(track.next, offset + 1)
        return track

    def keep_partitions(self, held: frozenset[Partition]) -> int:
        """Forget signals of partitions the group gave to another member; returns how many.

        Their new holder offers them again from the last committed position.
        Signals already acknowledged stay until they are settled.
        """
        with self._lock:
            lost = [p for p in self._tracks if p not in held]
            dropped = 0
            for partition in lost:
                for message_id, entry in list(self._entries.items()):
                    item = entry.item
                    if (item.topic, item.partition) == partition and not entry.acked:
                        del self._entries[message_id]
                        dropped += 1
                if not any(
                    (e.item.topic, e.item.partition) == partition for e in self._entries.values()
                ):
                    del self._tracks[partition]
            return dropped

    def due(self) -> Settlement | None:
        """Acknowledged signals not yet settled and positions that moved; None if nothing is due."""
        with self._lock:
            signals = [e.item for e in self._entries.values() if e.acked]
            done: dict[Partition, set[int]] = {}
            for item in signals:
                done.setdefault((item.topic, item.partition), set()).add(item.offset)
            positions = {}
            for partition, track in self._tracks.items():
                position = track.position(done.get(partition, ()))
                if position != track.committed:
                    positions[partition] = position
            if not signals and not positions and not self._waiters:
                return None
            waiters, self._waiters = self._waiters, []
            return Settlement(signals, positions, waiters)

    def settled(self, settlement: Settlement) -> None:
        """The receipts are written and the positions committed: forget those signals."""
        with self._lock:
            for item in settlement.signals:
                self._entries.pop(item.signal.message_id, None)
                track = self._tracks.get((item.topic, item.partition))
                if track is not None:
                    track.open.discard(item.offset)
            for partition, position in settlement.positions.items():
                if partition in self._tracks:
                    self._tracks[partition].committed = position
        for future, known, unknown in settlement.waiters:
            if not future.done():
                future.set_result(AckResult(known, unknown))

    def failed(self, settlement: Settlement, error: BaseException) -> None:
        """The receipts could not be written: those signals are offered again, callers told."""
        with self._lock:
            for item in settlement.signals:
                entry = self._entries.get(item.signal.message_id)
                if entry is not None:
                    entry.acked = False
                    entry.lease_until = None
                    entry.leased_to = None
        for future, _known, _unknown in settlement.waiters:
            if not future.done():
                future.set_exception(error)
        self._notify()

    def fail_waiting(self, error: BaseException) -> None:
        """Answer every acknowledgement still waiting with ``error`` (the node stops)."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for future, _known, _unknown in waiters:
            if not future.done():
                future.set_exception(error)

    # -- the callers' side -----------------------------------------------------------------------

    def lease(
        self,
        limit: int,
        client: str,
        *,
        purposes: frozenset[str] = frozenset(),
        signals: frozenset[str] = frozenset(),
    ) -> list[FetchedSignal]:
        """Lend up to ``limit`` signals (oldest first) not lent now, matching the filters."""
        now = self._clock()
        lent: list[FetchedSignal] = []
        with self._lock:
            for entry in self._entries.values():
                if len(lent) >= limit:
                    break
                received = entry.item.signal
                if entry.acked or (entry.lease_until is not None and entry.lease_until > now):
                    continue
                if purposes and received.purpose not in purposes:
                    continue
                if signals and received.signal not in signals:
                    continue
                entry.lease_until = now + self.lease_seconds
                entry.leased_to = client
                lent.append(entry.item)
        return lent

    def release(self, message_ids: Sequence[str]) -> None:
        """End the leases of these signals now: they are offered again at once."""
        with self._lock:
            for message_id in message_ids:
                entry = self._entries.get(message_id)
                if entry is not None and not entry.acked:
                    entry.lease_until = None
                    entry.leased_to = None
        self._notify()

    def next_expiry(self) -> float | None:
        """Seconds until the first lease runs out (None when nothing is lent)."""
        now = self._clock()
        with self._lock:
            ends = [
                e.lease_until
                for e in self._entries.values()
                if e.lease_until is not None and not e.acked
            ]
        return max(0.0, min(ends) - now) if ends else None

    def acknowledge(self, message_ids: Sequence[str]) -> Future[AckResult]:
        """Mark these signals acknowledged; the future is answered once they are durable."""
        future: Future[AckResult] = Future()
        known: list[str] = []
        unknown: list[str] = []
        with self._lock:
            for message_id in dict.fromkeys(message_ids):
                entry = self._entries.get(message_id)
                if entry is None:
                    unknown.append(message_id)
                else:
                    entry.acked = True
                    known.append(message_id)
            self._waiters.append((future, tuple(known), tuple(unknown)))
        return future

    def counts(self) -> Mapping[str, int]:
        """How many signals wait, are lent out, and are acknowledged but not yet settled."""
        now = self._clock()
        with self._lock:
            lent = sum(
                1
                for e in self._entries.values()
                if not e.acked and e.lease_until is not None and e.lease_until > now
            )
            acked = sum(1 for e in self._entries.values() if e.acked)
            return {"waiting": len(self._entries) - lent - acked, "lent": lent, "acked": acked}

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()
