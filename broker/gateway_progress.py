"""Is the gateway getting through its backlog? For readiness, and for the operator's log.

The gateway's process can be alive while it moves nothing: a transaction that keeps
failing after a broker was lost, a partition it cannot read. Its readiness must then
say no, so that an orchestrator or an operator sees it. Progress is committed
records; the backlog is the consumer lag on the ingress topics, measured every few
seconds. While records wait, the gateway logs at INFO how many and at what rate; if
nothing is committed for ``stall_seconds`` while records wait, it is *stalled*: it
logs a warning once and readiness turns false until a commit goes through.

A gateway stalled for ``renew_seconds``, or unable to measure its backlog that long,
*needs renewal*: the runner replaces its consumer (kafka-python can stay wedged on
a connection to a broker that died and came back; a new consumer is not).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sigex.logs import get_logger

_log = get_logger(__name__)

#: Records wait and nothing is committed for this long: the gateway is not ready.
DEFAULT_STALL_SECONDS = 30.0
#: How often the catching-up line is logged while records wait.
DEFAULT_LOG_SECONDS = 5.0
#: Stalled, or the backlog unknown, this long: replace the consumer.
DEFAULT_RENEW_SECONDS = 60.0


class GatewayProgress:
    """Commits and lag over time; ``stalled`` when records wait and none are committed."""

    def __init__(
        self,
        *,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        log_seconds: float = DEFAULT_LOG_SECONDS,
        renew_seconds: float = DEFAULT_RENEW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stall_seconds = stall_seconds
        self._renew_seconds = renew_seconds
        self._log_seconds = log_seconds
        self._clock = clock
        self._last_commit = clock()
        self._committed_since_log = 0
        self._last_log = clock()
        self._lag: int | None = None
        self._last_measured = clock()
        self._stall_reported = False

    @property
    def lag(self) -> int | None:
        return self._lag

    @property
    def stalled(self) -> bool:
        waiting = self._lag is not None and self._lag > 0
        return waiting and self._clock() - self._last_commit > self._stall_seconds

    @property
    def needs_renewal(self) -> bool:
        """Stalled for ``renew_seconds`` past the stall, or the backlog not measured for
        ``renew_seconds``: the consumer is not getting anywhere."""
        now = self._clock()
        stuck = self.stalled and now - self._last_commit > self._stall_seconds + self._renew_seconds
        return stuck or now - self._last_measured > self._renew_seconds

    def renewed(self) -> None:
        """A new consumer: it gets ``renew_seconds`` before it can need renewal again."""
        now = self._clock()
        self._last_measured = now
        self._last_commit = max(self._last_commit, now - self._stall_seconds)

    def committed(self, records: int) -> None:
        self._last_commit = self._clock()
        self._committed_since_log += records
        if self._stall_reported:
            _log.info("gateway.progressing", committed=records)
            self._stall_reported = False

    def observe_lag(self, lag: int) -> None:
        """The records waiting on the ingress partitions this instance holds."""
        was = self._lag
        self._lag = lag
        now = self._clock()
        self._last_measured = now
        if lag > 0 and now - self._last_log >= self._log_seconds:
            elapsed = now - self._last_log
            _log.info(
                "gateway.catching_up",
                waiting=lag,
                per_second=round(self._committed_since_log / elapsed, 1),
            )
            self._last_log, self._committed_since_log = now, 0
        elif lag == 0 and was:
            _log.info("gateway.caught_up")
            self._last_log, self._committed_since_log = now, 0
        if self.stalled and not self._stall_reported:
            _log.warning(
                "gateway.stalled",
                waiting=lag,
                seconds_without_commit=round(now - self._last_commit),
            )
            self._stall_reported = True
