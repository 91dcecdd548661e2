"""A gateway killed with SIGKILL and started again with its instance takes its partitions back.

Before, every gateway kill stopped all deliveries for about 46 s: the consumer
group waited out the dead member's session before anyone read its partitions.
The gateway is now a static member of its group (``group.instance.id`` from its
instance), so the restarted process replaces the dead one at once, and the
session of a member that does not come back is 10 s. A generous bound (20 s from
the restart to the next signal delivered, against ~46 s before) shows it; this is
not a speed test.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from sigex.exchange.topology import delivery_topic
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.roles import Role
from sigex.schemas.catalogue import load_catalogue
from tests.integration.conftest import SecureExchange
from tests.integration.test_exchange_exactly_once import start_gateway
from tests.unit.schemas.conftest import LHN_A, make_bsn

SIGNAL, PURPOSE, SENDER, RECIPIENT = "payroll.bsn-mismatch", "BRP_TERUGMELDING", "UWV", "GM0363"
#: from the restart to a delivery; a dead member's session used to hold it ~46 s
BOUND_SECONDS = 20


def mismatch() -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "signal_id": str(uuid.uuid4()),
        "detected_at": now,
        "bsn": make_bsn(uuid.uuid4().int % 10**8),
        "kind": "BSN_UNKNOWN_IN_BRP",
        "employer_loonheffingennummer": LHN_A,
        "employer_kvk": "12345678",
        "payroll_period": now.date().replace(day=1),
        "municipality": RECIPIENT,
        "family_name": None,
        "birth_date": None,
    }


class Deliveries:
    """Counts committed records on the recipient's delivery topic from now on."""

    def __init__(self, exchange: SecureExchange) -> None:
        self._consumer = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **exchange.connection(Role.ADMIN).options(),
        )
        topic = delivery_topic(SIGNAL, RECIPIENT)
        partitions = [
            TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_end()
        for partition in partitions:
            self._consumer.position(partition)

    def wait_for_one(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(self._consumer.poll(timeout_ms=250).values()):
                return True
        return False

    def close(self) -> None:
        self._consumer.close()


def test_a_restarted_gateway_delivers_again_at_once(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    state = secure_exchange.state_dir
    group = f"sigex-gateway-restart-{uuid.uuid4().hex[:8]}"
    instance = f"{group}-a"
    log = tmp_path / "gateway.log"
    deliveries = Deliveries(secure_exchange)
    gateway: subprocess.Popen[bytes] = start_gateway(secure_exchange, group, instance, log)
    with Publisher(
        identity=load_party(state, SENDER),
        directory=load_directory(state),
        policy=load_policy(),
        catalogue=load_catalogue(),
        connection=secure_exchange.connection(SENDER),
        record_key=load_or_create_record_key(state, SENDER),
    ) as publisher:
        try:
            publisher.publish(SIGNAL, PURPOSE, [mismatch()])
            assert deliveries.wait_for_one(90), "the first gateway never delivered"

            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=30)
            restarted = time.monotonic()
            gateway = start_gateway(secure_exchange, group, instance, log)
            publisher.publish(SIGNAL, PURPOSE, [mismatch()])
            assert deliveries.wait_for_one(BOUND_SECONDS), log.read_text()[-2000:]
            assert time.monotonic() - restarted < BOUND_SECONDS
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            deliveries.close()
