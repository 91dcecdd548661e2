"""The delivery pump: the one thread that owns the node's Subscriber.

KafkaConsumer is not thread-safe, and a group member that does not poll
for ``max.poll.interval.ms`` is put out of its group; so one thread polls
all the time, filling the inbox while it has room (and holding its
partitions, paused, while it has none), settling acknowledgements between
polls: receipts first, then the offsets they allow.

When the broker cannot be reached, or refuses this party, the pump says so
in :attr:`DeliveryPump.problem` (readiness) and tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sigex.consumers.errors import AccessRefused
from sigex.consumers.health import Step
from sigex.consumers.subscriber import Settling, Subscriber
from sigex.logs import get_logger
from sigex.node.inbox import DeliveryInbox, Settlement

_log = get_logger(__name__)

#: how long one poll may wait for signals; acknowledgements wait at most this long for the pump
POLL_MS = 20
#: the poll's wait while a settlement is under way, so that it is moved on promptly
SETTLING_POLL_MS = 2
RETRY_SECONDS = 5.0


class DeliveryPump:
    """Runs a Subscriber into a :class:`DeliveryInbox` until stopped."""

    def __init__(
        self,
        subscriber_factory: Callable[[], Subscriber],
        inbox: DeliveryInbox,
        *,
        party: str,
        poll_ms: int = POLL_MS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._factory = subscriber_factory
        self._inbox = inbox
        self._party = party
        self._poll_ms = poll_ms
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigex-node-pump", daemon=True)
        #: why the pump cannot receive now (None while it can); a code and a sentence
        self.problem: str | None = "starting"
        self.subscribed: frozenset[str] = frozenset()
        self._connecting = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current poll; a thread still waiting for a broker is left to end
        by itself (it is a daemon, and stops as soon as its client gives up)."""
        self._stop.set()
        if self._thread.is_alive() and not self._connecting:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._connecting = True
            try:
                subscriber = self._factory()
            except Exception as error:  # the broker is down or refuses us: say so, try again
                self._down(error)
                continue
            finally:
                self._connecting = False
            try:
                self._pump(subscriber)
            except Exception as error:
                self._down(error)
            finally:
                try:
                    subscriber.close()
                except Exception as error:  # closing a broken client; the next one matters
                    _log.warning("node.pump_close_failed", error=type(error).__name__)
        self._inbox.fail_waiting(RuntimeError("the node is stopping"))

    def _down(self, error: BaseException) -> None:
        refused = isinstance(error, AccessRefused)
        self.problem = "access-refused" if refused else "broker-unreachable"
        self.subscribed = frozenset()
        _log.error(
            "node.receiving_down",
            party=self._party,
            problem=self.problem,
            error=type(error).__name__,
            detail=str(error) if refused else None,
        )
        self._stop.wait(self._retry_seconds)

    def _pump(self, subscriber: Subscriber) -> None:
        """Fetch while one settlement at a time goes on beside it: an acknowledgement never
        holds up receiving, and no commit can pass one that failed."""
        self.problem = None
        inflight: tuple[Settlement, Settling] | None = None
        try:
            while not self._stop.is_set():
                if inflight is None:
                    settlement = self._inbox.due()
                    if settlement is not None:
                        inflight = (
                            settlement,
                            subscriber.begin_settle(settlement.signals, settlement.positions),
                        )
                if inflight is not None and subscriber.advance(inflight[1]):
                    self._inbox.settled(inflight[0])
                    inflight = None
                    continue
                self._receive(subscriber, busy=inflight is not None)
        except BaseException as error:
            if inflight is not None:
                self._inbox.failed(inflight[0], error)
            raise
        if inflight is not None:
            self._inbox.failed(inflight[0], RuntimeError("the node stopped before it settled"))

    def _receive(self, subscriber: Subscriber, *, busy: bool) -> None:
        room = self._inbox.room()
        poll_ms = SETTLING_POLL_MS if busy else self._poll_ms
        batch = subscriber.fetch(poll_ms, max(room, 1), hold=room == 0)
        self._inbox.add(batch)
        self._inbox.keep_partitions(subscriber.partitions)
        self.subscribed = subscriber.subscribed
        if room and not busy and subscriber.health() is Step.RECOVER:
            subscriber.rejoin()


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True
