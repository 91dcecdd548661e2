"""A monotonic clock for tests: it stands still until a test moves it (``clock.now += 5``)."""

from __future__ import annotations


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
