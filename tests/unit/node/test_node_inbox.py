"""The node's inbox: leases, acknowledgements, and the offsets they let the pump commit."""

from __future__ import annotations

import pytest

from sigex.consumers.subscriber import FetchedBatch
from sigex.node.inbox import DeliveryInbox
from tests.manual_clock import ManualClock
from tests.unit.node.fetched import fetched

TOPIC = "sigex.laa.frequent-mover.out.GM0363"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def inbox(clock: ManualClock) -> DeliveryInbox:
    return DeliveryInbox(capacity=4, lease_seconds=30, clock=clock)


def ids(items: list[object]) -> list[str]:
    return [item.signal.message_id for item in items]  # type: ignore[attr-defined]


def test_a_lease_lends_each_signal_once_until_it_runs_out(
    inbox: DeliveryInbox, clock: ManualClock
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10), fetched("m2", 11))))
    assert ids(inbox.lease(1, "a")) == ["m1"]
    assert ids(inbox.lease(5, "b")) == ["m2"]
    assert inbox.lease(5, "c") == []
    clock.now += 31
    assert ids(inbox.lease(5, "c")) == ["m1", "m2"]  # not acknowledged: offered again


def test_the_committed_position_never_passes_an_unacknowledged_signal(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10), fetched("m2", 11), fetched("m3", 12))))
    inbox.lease(3, "a")
    inbox.acknowledge(["m2", "m3"])
    due = inbox.due()
    assert due is not None
    assert sorted(ids(due.signals)) == ["m2", "m3"]
    assert due.positions == {(TOPIC, 0): 10}  # m1 (offset 10) is still open
    inbox.settled(due)
    future = inbox.acknowledge(["m1"])
    due = inbox.due()
    assert due is not None and due.positions == {(TOPIC, 0): 13}
    inbox.settled(due)
    assert future.result(0).acknowledged == ("m1",)
    assert inbox.due() is None  # nothing moved since


def test_positions_settled_by_the_subscriber_are_committed_without_an_ack(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((), ((TOPIC, 1, 40), (TOPIC, 1, 41))))
    due = inbox.due()
    assert due is not None and due.positions == {(TOPIC, 1): 42} and due.signals == []


def test_an_acknowledgement_answers_only_after_settlement_and_names_the_unknown(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10),)))
    future = inbox.acknowledge(["m1", "never-seen", "m1"])
    assert not future.done()
    due = inbox.due()
    assert due is not None
    inbox.settled(due)
    result = future.result(0)
    assert result.acknowledged == ("m1",)
    assert result.unknown == ("never-seen",)
    assert inbox.counts() == {"waiting": 0, "lent": 0, "acked": 0}


def test_a_failed_settlement_tells_the_caller_and_offers_the_signal_again(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10),)))
    inbox.lease(1, "a")
    future = inbox.acknowledge(["m1"])
    due = inbox.due()
    assert due is not None
    inbox.failed(due, RuntimeError("receipts not written"))
    with pytest.raises(RuntimeError):
        future.result(0)
    assert ids(inbox.lease(1, "b")) == ["m1"]  # back, lease dropped
    again = inbox.due()
    assert again is not None and again.positions == {(TOPIC, 0): 10}


def test_the_same_signal_fetched_again_after_a_rejoin_is_held_once(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10),)))
    inbox.add(FetchedBatch((fetched("m1", 10), fetched("m2", 11))))
    assert ids(inbox.lease(10, "a")) == ["m1", "m2"]
    assert inbox.room() == 2


def test_room_counts_down_to_zero_at_capacity(inbox: DeliveryInbox) -> None:
    inbox.add(FetchedBatch(tuple(fetched(f"m{i}", i) for i in range(4))))
    assert inbox.room() == 0


def test_signals_of_a_partition_given_away_are_forgotten_unless_acknowledged(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(FetchedBatch((fetched("m1", 10, partition=0), fetched("m2", 5, partition=1))))
    inbox.add(FetchedBatch((fetched("m3", 11, partition=0),)))
    inbox.acknowledge(["m3"])
    dropped = inbox.keep_partitions(frozenset({(TOPIC, 1)}))
    assert dropped == 1  # m1; m3 waits to be settled
    assert ids(inbox.lease(10, "a")) == ["m2"]


def test_the_filters_lend_only_the_purposes_and_signals_asked_for(
    inbox: DeliveryInbox,
) -> None:
    inbox.add(
        FetchedBatch(
            (
                fetched("m1", 10, purpose="LAA_ADRESKWALITEIT"),
                fetched("m2", 11, purpose="TOEZICHT"),
            )
        )
    )
    assert ids(inbox.lease(5, "a", purposes=frozenset({"TOEZICHT"}))) == ["m2"]
    assert inbox.lease(5, "a", signals=frozenset({"payroll.bsn-mismatch"})) == []


def test_listeners_hear_of_new_and_returned_signals(inbox: DeliveryInbox) -> None:
    heard: list[int] = []
    inbox.listen(lambda: heard.append(1))
    inbox.add(FetchedBatch((fetched("m1", 10),)))
    inbox.add(FetchedBatch((fetched("m1", 10),)))  # nothing new
    assert heard == [1]
