"""Readiness turns false when records wait and nothing commits; the backlog is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from sigex.broker.gateway_progress import GatewayProgress
from tests.manual_clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def info_logs() -> Iterator[None]:
    """INFO passes (another test may have configured the operator's WARNING level)."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**before)


def test_waiting_records_and_no_commit_for_the_stall_time_is_stalled(clock: ManualClock) -> None:
    progress = GatewayProgress(stall_seconds=30, clock=clock)
    progress.observe_lag(500)
    clock.now += 29
    assert not progress.stalled
    clock.now += 2
    assert progress.stalled
    progress.committed(100)  # a commit goes through: ready again
    assert not progress.stalled


def test_an_idle_gateway_with_nothing_waiting_is_never_stalled(clock: ManualClock) -> None:
    progress = GatewayProgress(stall_seconds=30, clock=clock)
    clock.now += 3600
    assert not progress.stalled  # lag unknown
    progress.observe_lag(0)
    assert not progress.stalled


def test_the_backlog_is_logged_while_it_lasts_and_a_stall_once(
    clock: ManualClock, info_logs: None
) -> None:
    progress = GatewayProgress(stall_seconds=30, log_seconds=5, clock=clock)
    with structlog.testing.capture_logs() as logs:
        clock.now += 5
        progress.committed(250)
        progress.observe_lag(1000)
        clock.now += 40
        progress.observe_lag(1000)
        progress.observe_lag(1000)
        progress.committed(10)
        progress.observe_lag(0)
    events = [entry["event"] for entry in logs]
    assert events.count("gateway.stalled") == 1
    assert events[0] == "gateway.catching_up" and logs[0]["waiting"] == 1000
    assert logs[0]["per_second"] == 50.0  # 250 records in 5 s
    assert events[-2:] == ["gateway.progressing", "gateway.caught_up"]


def test_provisioning_keeps_acknowledged_writes_on_two_brokers_where_there_are_three() -> None:
    from sigex.broker.provision import min_insync_replicas

    assert [min_insync_replicas(rf) for rf in (1, 2, 3, 5)] == [1, 1, 2, 2]


def test_a_consumer_stalled_past_the_renewal_time_needs_renewal(clock: ManualClock) -> None:
    progress = GatewayProgress(stall_seconds=30, renew_seconds=60, clock=clock)
    progress.observe_lag(500)
    clock.now += 60
    progress.observe_lag(500)  # measured, but still nothing committed
    assert progress.stalled and not progress.needs_renewal
    clock.now += 31  # 91 s without a commit: 30 s to the stall, 60 s more
    progress.observe_lag(500)
    assert progress.needs_renewal
    progress.renewed()
    assert not progress.needs_renewal  # the new consumer gets its own time
    clock.now += 61
    progress.observe_lag(500)
    assert progress.needs_renewal
    progress.committed(10)
    assert not progress.needs_renewal


def test_a_backlog_that_cannot_be_measured_needs_renewal(clock: ManualClock) -> None:
    progress = GatewayProgress(stall_seconds=30, renew_seconds=60, clock=clock)
    progress.observe_lag(0)
    clock.now += 59
    assert not progress.needs_renewal
    clock.now += 2  # no lag measured for 61 s (every request to the broker failed)
    assert progress.needs_renewal and not progress.stalled
    progress.renewed()
    assert not progress.needs_renewal
