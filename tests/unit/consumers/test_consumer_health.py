"""The clocks and the verdicts that keep a consumer from stopping with records waiting."""

from __future__ import annotations

from sigex.consumers.health import ConsumerWatch, Step, assess


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch_at(ticker: Ticker) -> ConsumerWatch:
    return ConsumerWatch(stall_seconds=30, join_seconds=60, lag_every_seconds=0, clock=ticker)


def test_the_idle_clock_starts_only_once_partitions_are_assigned() -> None:
    ticker = Ticker()
    watch = watch_at(ticker)
    ticker.now = 50  # a dead member still holds the partitions
    watch.observe(assigned=False, fetched=0)
    assert assess(watch, lambda: 0, idle_exit_seconds=5) is Step.CONTINUE
    watch.observe(assigned=True, fetched=0)
    ticker.now = 52
    assert assess(watch, lambda: 0, idle_exit_seconds=5) is Step.CONTINUE
    ticker.now = 56
    assert assess(watch, lambda: 0, idle_exit_seconds=5) is Step.DRAINED


def test_an_idle_exit_needs_a_lag_of_zero() -> None:
    ticker = Ticker()
    watch = watch_at(ticker)
    watch.observe(assigned=True, fetched=0)
    ticker.now = 10
    assert assess(watch, lambda: 2_228, idle_exit_seconds=5) is Step.CONTINUE
    assert assess(watch, lambda: None, idle_exit_seconds=5) is Step.CONTINUE
    ticker.now = 31
    assert assess(watch, lambda: 2_228, idle_exit_seconds=5) is Step.RECOVER


def test_partitions_held_with_records_waiting_and_nothing_fetched_is_a_stall() -> None:
    ticker = Ticker()
    watch = watch_at(ticker)
    watch.observe(assigned=True, fetched=10)
    ticker.now = 29
    watch.observe(assigned=True, fetched=0)
    assert assess(watch, lambda: 100) is Step.CONTINUE
    ticker.now = 31
    assert assess(watch, lambda: 100) is Step.RECOVER
    assert assess(watch, lambda: 0) is Step.CONTINUE  # caught up: no exit without idle_exit


def test_no_partitions_for_longer_than_a_session_is_a_stall() -> None:
    ticker = Ticker()
    watch = watch_at(ticker)
    ticker.now = 59
    watch.observe(assigned=False, fetched=0)
    assert assess(watch, lambda: 0) is Step.CONTINUE
    ticker.now = 61
    assert assess(watch, lambda: 0) is Step.RECOVER
    watch.restart()
    assert assess(watch, lambda: 0) is Step.CONTINUE


def test_fetching_resets_the_rejoins_in_a_row() -> None:
    ticker = Ticker()
    watch = watch_at(ticker)
    watch.recoveries = 2
    watch.observe(assigned=True, fetched=0)
    assert watch.recoveries == 2
    watch.observe(assigned=True, fetched=1)
    assert watch.recoveries == 0


def test_an_idle_consumer_asks_for_its_lag_only_now_and_then_but_always_before_it_exits() -> None:
    ticker = Ticker()
    watch = ConsumerWatch(stall_seconds=30, join_seconds=60, lag_every_seconds=2, clock=ticker)
    watch.observe(assigned=True, fetched=0)
    asked: list[float] = []

    def lag() -> int:
        asked.append(ticker.now)
        return 0

    for tick in range(300, 340):  # 30 to 34 s idle, polled every 0.1 s, no idle exit
        ticker.now = tick / 10
        assess(watch, lag)
    assert len(asked) == 2
    ticker.now = 40
    assert assess(watch, lag, idle_exit_seconds=5) is Step.DRAINED
    assert assess(watch, lag, idle_exit_seconds=5) is Step.DRAINED
    assert len(asked) == 4
