"""A delivery topic that is gone does not loop the gateway: bounded tries, then DELIVERY_FAILED.

Before, a missing delivery topic (a policy change, an operator's mistake) made the
gateway abort and retry the same batch for ever, and nothing else flowed. Now it
reads the batch again a few times (the topic may be on its way), then refuses the
recipients behind it ``DELIVERY_FAILED`` (dead-lettered, audited, counted as an
alarm) and lets the rest flow; once the topic is back, deliveries to it resume.
On its own TLS broker with ACLs, since it deletes a topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from sigex.broker.gateway import MISSING_TOPIC_TRIES
from sigex.exchange.access_record import EventKind
from sigex.exchange.protocol import REASONS_HEADER, SOURCE_HEADER, header_value
from sigex.exchange.topology import AUDIT_TOPIC, DEAD_LETTER_TOPIC, delivery_topic, ingress_topic
from tests.integration.conftest import SecureExchange, running_exchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, start_kit
from tests.signal_records import frequent_mover

SIGNAL = "laa.frequent-mover"
PURPOSE = "LAA_SIGNAAL"
SENDER = "RVIG"
GONE, HERE = "GM0363", "GM0599"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureExchange]:
    yield from running_exchange(tmp_path_factory.mktemp("delivery-failures"))


@pytest.fixture(scope="module")
def kit(exchange: SecureExchange) -> Iterator[ExchangeKit]:
    yield from start_kit(exchange)


def mover(municipality: str) -> dict[str, object]:
    return frequent_mover(municipality, fresh_bsn(), EXCHANGE_TIME)


def _wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def test_a_deleted_delivery_topic_is_given_up_on_and_the_rest_flows(
    kit: ExchangeKit, exchange: SecureExchange, tmp_path: Path
) -> None:
    gone_topic = delivery_topic(SIGNAL, GONE)
    admin = exchange.admin()
    try:
        admin.delete_topics([gone_topic])
        assert _wait_for(lambda: gone_topic not in admin.list_topics(), 30)

        publisher = kit.publisher(SENDER)
        result = publisher.publish(SIGNAL, PURPOSE, [mover(GONE), mover(HERE)])
        assert len(result.published) == 2

        # the other municipality gets its signal: the batch was not stuck for ever
        with kit.subscriber(HERE, (PURPOSE,), signals=(SIGNAL,)) as subscriber:
            here = kit.collect(subscriber, lambda got: len(got) >= 1, timeout=90)
        assert len(here) == 1

        # the one behind the deleted topic is dead-lettered DELIVERY_FAILED, from its offset
        ingress = ingress_topic(SIGNAL, SENDER)
        failed = [
            m
            for m in kit.read_topic(DEAD_LETTER_TOPIC, timeout=30)
            if header_value(m.headers, REASONS_HEADER) == b"DELIVERY_FAILED"
            and (header_value(m.headers, SOURCE_HEADER) or b"").startswith(ingress.encode())
        ]
        assert len(failed) == 1
        refusals = kit.access_records(
            AUDIT_TOPIC,
            lambda r: r.recipient == GONE and "DELIVERY_FAILED" in r.reason_codes,
            timeout=30,
        )
        # refused for that recipient, and its copy parked: both records name the recipient
        assert {r.kind for r in refusals} == {
            EventKind.REFUSED_FOR_RECIPIENT,
            EventKind.DEAD_LETTERED,
        }
        assert kit.runner.processed >= 2
        assert MISSING_TOPIC_TRIES >= 2  # it was retried before it was given up on
    finally:
        if gone_topic not in admin.list_topics():
            admin.create_topics([NewTopic(gone_topic, 3, 1)])
        admin.close()

    # the topic is back (provisioned again): deliveries to it resume
    with kit.subscriber(GONE, (PURPOSE,), signals=(SIGNAL,)) as subscriber:
        publisher.publish(SIGNAL, PURPOSE, [mover(GONE)])
        assert len(kit.collect(subscriber, lambda got: len(got) >= 1, timeout=90)) == 1


def test_a_delivery_too_large_for_its_topic_is_refused_and_the_rest_flows(
    kit: ExchangeKit, exchange: SecureExchange
) -> None:
    small = delivery_topic(SIGNAL, GONE)
    admin = exchange.admin()
    resource = ConfigResource(ConfigResourceType.TOPIC, small, configs={"max.message.bytes": "200"})
    try:
        admin.alter_configs([resource])
        publisher = kit.publisher(SENDER)
        too_large, fits = mover(GONE), mover(HERE)
        with kit.subscriber(HERE, (PURPOSE,), signals=(SIGNAL,)) as subscriber:
            publisher.publish(SIGNAL, PURPOSE, [too_large, fits])
            here = kit.collect(
                subscriber,
                lambda got: any(str(s.fields["signal_id"]) == fits["signal_id"] for s in got),
                timeout=90,
            )
        assert fits["signal_id"] in {str(signal.fields["signal_id"]) for signal in here}
        refusals = kit.access_records(
            AUDIT_TOPIC,
            lambda r: r.recipient == GONE and "DELIVERY_FAILED" in r.reason_codes,
            timeout=30,
        )
        assert len(refusals) >= 2  # the deleted-topic refusal above, and this one
    finally:
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, small, configs={"max.message.bytes": "1048588"}
                )
            ]
        )
        admin.close()
