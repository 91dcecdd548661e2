"""Watching a group consumer: how far behind it is, and whether it has stalled.

kafka-python's group consumer can end up holding partitions it never fetches
from, or waiting for partitions a dead member still holds; a restarted
consumer that only counts "seconds without a record" then stops, satisfied,
with signals still waiting. The subscriber and the audit indexer therefore
watch two clocks and the lag:

- the *idle* clock runs only while partitions are assigned, and restarts
  with every record fetched;
- the *waiting* clock runs while no partition is assigned.

:func:`assess` turns them into the next step: go on, stop (idle long enough
with nothing left to read), or recover (rejoin the group: partitions held
with records waiting and nothing fetched for a while, or no partitions for
longer than a session timeout).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from kafka.errors import KafkaError

#: A member that stops heartbeating is out of the group after this long; a restarted
#: process with the same static instance id takes its partitions back at once.
SESSION_TIMEOUT_MS: Final = 10_000
HEARTBEAT_INTERVAL_MS: Final = 3_000
#: How long the broker may hold a fetch that has nothing to return. Kafka's default is
#: 500 ms; a read_committed consumer often waits that long for records a transaction has
#: just committed (the broker wakes a waiting fetch on new records, not reliably on a commit
#: marker), which showed as 500-700 ms latency spikes in bench/bench_node.py.
FETCH_MAX_WAIT_MS: Final = 100
#: Group options for every long-running consumer of the exchange.
GROUP_OPTIONS: Final[dict[str, object]] = {
    "session_timeout_ms": SESSION_TIMEOUT_MS,
    "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
    "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
}


#: commits refused in a row (the group keeps rebalancing under this member) before a rejoin
COMMIT_FAILURES_BEFORE_REJOIN: Final = 3


class Step(Enum):
    CONTINUE = "continue"
    DRAINED = "drained"
    RECOVER = "recover"


def partition_lag(consumer: Any) -> dict[Any, int] | None:
    """Records not yet consumed per assigned partition; None while that cannot be known.

    Under ``read_committed`` the end offset is the last stable offset, and the
    position moves past transaction markers, so a consumer that has read all
    it can read has lag 0.
    """
    assigned = list(consumer.assignment())
    if not assigned:
        return {}
    try:
        ends = consumer.end_offsets(assigned, timeout_ms=_ASK_TIMEOUT_MS)
        positions = {tp: consumer.position(tp, timeout_ms=_ASK_TIMEOUT_MS) for tp in assigned}
    except (KafkaError, AssertionError, KeyError):  # a rebalance took a partition meanwhile
        return None
    if any(position is None or tp not in ends for tp, position in positions.items()):
        return None
    return {tp: max(0, int(ends[tp]) - int(position)) for tp, position in positions.items()}


_ASK_TIMEOUT_MS: Final = 10_000


@dataclass
class ConsumerWatch:
    """The idle and waiting clocks of one consumer (see the module's doc)."""

    stall_seconds: float = 30.0
    join_seconds: float = 60.0
    #: how often an idle consumer asks the broker for its lag (an exit always asks afresh)
    lag_every_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    recoveries: int = 0
    commit_failures: int = 0
    _assigned: bool = field(default=False, init=False)
    _lag_asked_at: float = field(default=float("-inf"), init=False)
    _progress_at: float = field(default=0.0, init=False)
    _unassigned_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A new consumer: no partitions yet, both clocks from now."""
        now = self.clock()
        self._assigned = False
        self._progress_at = self._unassigned_at = now
        self.commit_failures = 0

    def observe(self, *, assigned: bool, fetched: int) -> None:
        now = self.clock()
        if not assigned:
            if self._assigned:
                self._unassigned_at = now
            self._assigned = False
            return
        if not self._assigned or fetched:
            self._progress_at = now  # the idle clock starts at the assignment
        if fetched:
            self.recoveries = 0
        self._assigned = True

    def held(self) -> None:
        """The application holds the consumer back (it has all it can take): not idle."""
        self._progress_at = self.clock()

    def lag_due(self) -> bool:
        """True (and the lag clock restarted) when the lag may be asked again."""
        now = self.clock()
        if now - self._lag_asked_at < self.lag_every_seconds:
            return False
        self._lag_asked_at = now
        return True

    @property
    def idle_seconds(self) -> float:
        return self.clock() - self._progress_at if self._assigned else 0.0

    @property
    def waiting_seconds(self) -> float:
        return 0.0 if self._assigned else self.clock() - self._unassigned_at


def assess(
    watch: ConsumerWatch,
    lag: Callable[[], int | None],
    idle_exit_seconds: float | None = None,
) -> Step:
    """What to do after a poll. ``lag`` (total records waiting) is asked only when idle."""
    if watch.waiting_seconds >= watch.join_seconds:
        return Step.RECOVER
    idle = watch.idle_seconds
    exit_after = idle_exit_seconds if idle_exit_seconds is not None else float("inf")
    if idle < min(watch.stall_seconds, exit_after):
        return Step.CONTINUE
    if idle < exit_after and not watch.lag_due():
        return Step.CONTINUE
    waiting = lag()
    if waiting is None:
        return Step.CONTINUE
    if waiting == 0:
        return Step.DRAINED if idle >= exit_after else Step.CONTINUE
    return Step.RECOVER if idle >= watch.stall_seconds else Step.CONTINUE
