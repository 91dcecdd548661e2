"""10,000 signals through two gateway instances, one killed with SIGKILL twice: each once.

Each kill waits until the gateways' group has committed another 1,000 ingress records
(offsets are committed in the transaction that writes the deliveries) and checks that
at least 500 still wait, so it hits a gateway with work in flight, never an idle one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.exchange.topology import delivery_topic, ingress_topic
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.schemas.catalogue import load_catalogue
from tests.integration.conftest import SecureExchange, running_exchange
from tests.integration.exchange_kit import ExchangeKit, start_kit
from tests.unit.schemas.conftest import LHN_A, make_bsn

SIGNALS = 10_000
BATCH = 500
MUNICIPALITIES = ("GM0363", "GM0599")
SIGEX = str(Path(sys.executable).parent / "sigex")
#: records the gateways' group must commit since the killed instance started, before a kill
PROGRESS_BEFORE_KILL = 1_000
#: records still waiting on ingress at the kill, so that it hits a gateway with work in flight
IN_FLIGHT_AT_KILL = 500


def ingress_progress(exchange: SecureExchange, group: str) -> tuple[int, int]:
    """(records the group has committed, records still waiting) on UWV's ingress topic.

    A gateway commits its consumed offsets in the transaction that writes the
    deliveries, so the committed count grows only with committed transactions.
    """
    topic = ingress_topic("payroll.bsn-mismatch", "UWV")
    admin = exchange.admin()
    consumer = KafkaConsumer(group_id=None, **exchange.connection("ADMIN").options())
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
        admin.close()
    done = sum(offset.offset for tp, offset in committed.items() if tp.topic == topic)
    return done, sum(ends.values()) - done


def wait_for_progress(exchange: SecureExchange, group: str, since: int) -> int:
    """Block until the group committed PROGRESS_BEFORE_KILL more records with work left."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, waiting = ingress_progress(exchange, group)
        if done - since >= PROGRESS_BEFORE_KILL:
            assert waiting >= IN_FLIGHT_AT_KILL, (
                f"only {waiting} records left at the kill: it would hit an idle gateway"
            )
            return done
        time.sleep(0.1)
    raise AssertionError(f"the gateways did not commit {PROGRESS_BEFORE_KILL} records in 120 s")


def start_gateway(
    exchange: SecureExchange, group: str, instance: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}
    env |= {
        "SIGEX_STATE_DIR": str(exchange.state_dir),
        "SIGEX_BOOTSTRAP": exchange.bootstrap,
        "SIGEX_GATEWAY_GROUP": group,
        "SIGEX_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [SIGEX, "gateway", "run", "--instance", instance, "--no-metrics"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def isolated_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureExchange]:
    """A broker of its own: 10,000 signals would slow down every test sharing one."""
    yield from running_exchange(tmp_path_factory.mktemp("eos"))


@pytest.fixture(scope="module")
def reader(isolated_exchange: SecureExchange) -> ExchangeKit:
    """An exchange kit used only to read topics (its own gateway is stopped at once)."""
    kits = start_kit(isolated_exchange)
    kit = next(kits)
    kit.close()
    return kit


@pytest.mark.slow
def test_two_gateways_deliver_every_signal_exactly_once_across_crashes(
    isolated_exchange: SecureExchange, reader: ExchangeKit, tmp_path: Path
) -> None:
    secure_exchange = isolated_exchange
    state = secure_exchange.state_dir
    catalogue = load_catalogue()
    now = datetime.now(UTC)
    base = uuid.uuid4().int % 10**7 * 10
    bsns = [make_bsn(base + 13 * i) for i in range(SIGNALS)]
    assert len(set(bsns)) == SIGNALS
    records = [
        {
            "signal_id": str(uuid.uuid4()),
            "detected_at": now,
            "bsn": bsn,
            "kind": "BSN_UNKNOWN_IN_BRP",
            "employer_loonheffingennummer": LHN_A,
            "employer_kvk": "12345678",
            "payroll_period": now.date().replace(day=1),
            "municipality": MUNICIPALITIES[i % 2],
            "family_name": None,
            "birth_date": None,
        }
        for i, bsn in enumerate(bsns)
    ]
    secret = load_or_create_record_key(state, "UWV")
    subjects = SubjectPseudonyms(load_pseudonym_key(state))
    expected = {  # deliveries are keyed per recipient and subject
        subjects.delivery_key(r["municipality"], subjects.pseudonym(r["bsn"])): delivery_topic(
            "payroll.bsn-mismatch", r["municipality"]
        )
        for r in records
    }

    group = f"sigex-gateway-eos-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "gateway.log"
    # Two instances share the ingress partitions; the first is the one that crashes.
    gateway = start_gateway(secure_exchange, group, f"{group}-a", log)
    partner = start_gateway(secure_exchange, group, f"{group}-b", tmp_path / "partner.log")
    published = 0
    failure: list[BaseException] = []

    def publish_all() -> None:
        nonlocal published
        try:
            with Publisher(
                identity=load_party(state, "UWV"),
                directory=load_directory(state),
                policy=load_policy(),
                catalogue=catalogue,
                connection=secure_exchange.connection("UWV"),
                record_key=secret,
            ) as publisher:
                for start in range(0, SIGNALS, BATCH):
                    result = publisher.publish(
                        "payroll.bsn-mismatch", "BRP_TERUGMELDING", records[start : start + BATCH]
                    )
                    assert not result.refused
                    published += len(result.published)
        except BaseException as error:  # reported by the main thread
            failure.append(error)

    publishing = threading.Thread(target=publish_all)
    publishing.start()
    try:
        done = 0
        for _ in range(2):
            done = wait_for_progress(secure_exchange, group, done)
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=30)
            gateway = start_gateway(secure_exchange, group, f"{group}-a", log)
        publishing.join(timeout=300)
        assert not failure, failure
        assert published == SIGNALS

        counts: Counter[bytes] = Counter()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            counts = Counter()
            for topic in {delivery_topic("payroll.bsn-mismatch", m) for m in MUNICIPALITIES}:
                for record in reader.read_topic(topic, timeout=30):
                    if record.key in expected:
                        assert expected[record.key] == topic, "delivered to the wrong party"
                        counts[record.key] += 1
            if len(counts) == SIGNALS:
                break
            time.sleep(2)
    finally:
        for process in (gateway, partner):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    missing = SIGNALS - len(counts)
    duplicated = sum(1 for c in counts.values() if c > 1)
    assert missing == 0, f"{missing} signals never delivered; see {log}"
    assert duplicated == 0, f"{duplicated} signals delivered more than once"
    per_recipient = Counter(expected[key] for key in counts)
    assert per_recipient == {
        delivery_topic("payroll.bsn-mismatch", m): SIGNALS // 2 for m in MUNICIPALITIES
    }
    assert gateway.returncode == 0, "the gateway did not drain and stop cleanly on SIGTERM"
    assert partner.returncode == 0, "the second instance did not stop cleanly"
    assert "stopped after 0 records" not in (tmp_path / "partner.log").read_text(), (
        "the second instance shared none of the work"
    )
