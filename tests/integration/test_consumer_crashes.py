"""``sigex subscribe`` and ``sigex audit index`` killed with SIGKILL again and again, and restarted.

Against the real broker with mutual TLS and ACLs, with a real gateway
process in between: signals flow while the consumer is killed ten times at
random moments; a last run drains. Counted afterwards: nothing lost, nothing
twice. And a consumer restarted while a dead member of its group still holds
the partitions waits for them instead of reporting "0 received" and exit 0.
"""

from __future__ import annotations

import json
import os
import random
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
from typing import Any

import pytest
from kafka import KafkaProducer

from sigex.audit.checkpoint_topic import read_published_checkpoints
from sigex.audit.indexer import subscription
from sigex.audit.store import AccessLogStore
from sigex.consumers.subscriber import Subscriber
from sigex.exchange.access_record import AccessRecord
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.exchange.topology import (
    AUDIT_TOPIC,
    RECEIPTS_PREFIX,
    delivery_topic,
    subscriber_group_prefix,
)
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.roles import Role
from sigex.schemas.catalogue import load_catalogue
from tests.access_records import delivered_record
from tests.integration.conftest import SecureExchange
from tests.unit.schemas.conftest import LHN_A, make_bsn

SIGEX = str(Path(sys.executable).parent / "sigex")
SIGNAL = "payroll.bsn-mismatch"
PURPOSE = "BRP_TERUGMELDING"
KILLS = 10

#: A member of a consumer group that joins, takes every partition, and can then be killed.
HOLDER = """
import json, sys, time
from kafka import KafkaConsumer
spec = json.loads(sys.argv[1])
consumer = KafkaConsumer(group_id=spec["group"], enable_auto_commit=False,
                         session_timeout_ms=spec["session_ms"], **spec["options"])
if "pattern" in spec:
    consumer.subscribe(pattern=spec["pattern"])
else:
    consumer.subscribe(topics=spec["topics"])
while not consumer.assignment():
    consumer.poll(timeout_ms=500)
print("held", flush=True)
time.sleep(3600)
"""


def sigex_env(exchange: SecureExchange) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}
    return env | {
        "SIGEX_STATE_DIR": str(exchange.state_dir),
        "SIGEX_BOOTSTRAP": exchange.bootstrap,
        "SIGEX_LOG_LEVEL": "WARNING",
    }


def start(exchange: SecureExchange, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [SIGEX, *args], env=sigex_env(exchange), stdout=sink, stderr=subprocess.STDOUT
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def hold_partitions(
    exchange: SecureExchange, party: str, group: str, session_ms: int, **subscribed: object
) -> subprocess.Popen[str]:
    """A consumer in ``group`` holding all its partitions (to be killed, leaving them held)."""
    spec = {
        "group": group,
        "session_ms": session_ms,
        "options": exchange.connection(party).options(),
        **subscribed,
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=sigex_env(exchange),
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture(scope="module")
def gateway(
    secure_exchange: SecureExchange, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The real gateway, as its own process."""
    group = f"sigex-gateway-crash-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [SIGEX, "gateway", "run", "--instance", f"{group}-a", "--no-metrics"],
            env=sigex_env(secure_exchange) | {"SIGEX_GATEWAY_GROUP": group},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill(process)


def mismatches(count: int, municipality: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    base = uuid.uuid4().int % 10**7 * 10
    return [
        {
            "signal_id": str(uuid.uuid4()),
            "detected_at": now,
            "bsn": make_bsn(base + 13 * i),
            "kind": "BSN_UNKNOWN_IN_BRP",
            "employer_loonheffingennummer": LHN_A,
            "employer_kvk": "12345678",
            "payroll_period": now.date().replace(day=1),
            "municipality": municipality,
            "family_name": None,
            "birth_date": None,
        }
        for i in range(count)
    ]


def publish(
    exchange: SecureExchange, records: list[dict[str, Any]], pause: float = 0.0, batch: int = 100
) -> None:
    state = exchange.state_dir
    with Publisher(
        identity=load_party(state, "UWV"),
        directory=load_directory(state),
        policy=load_policy(),
        catalogue=load_catalogue(),
        connection=exchange.connection("UWV"),
        record_key=load_or_create_record_key(state, "UWV"),
    ) as publisher:
        for start_at in range(0, len(records), batch):
            result = publisher.publish(SIGNAL, PURPOSE, records[start_at : start_at + batch])
            assert not result.refused, result.refused
            time.sleep(pause)


def in_background(work: Any, *args: Any) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work(*args)
        except BaseException as error:  # reported by the test
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def lines_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def subscribe_args(party: str, name: str, out: Path, *extra: str) -> list[str]:
    return [
        "subscribe",
        "--as",
        party,
        "--purpose",
        PURPOSE,
        "--signal",
        SIGNAL,
        "--name",
        name,
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.slow
def test_sigex_subscribe_killed_ten_times_loses_nothing_and_writes_nothing_twice(
    secure_exchange: SecureExchange, gateway: None, tmp_path: Path
) -> None:
    records = mismatches(3_000, "GM0363")
    wanted = {r["signal_id"] for r in records}
    out = tmp_path / "GM0363.jsonl"
    name = f"crash-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "subscribe.log"
    seed = random.randrange(10**6)
    moments = random.Random(seed)
    # small batches, spread over the ten lives of the subscriber
    publishing, failures = in_background(publish, secure_exchange, records, 0.25, 25)
    try:
        for _ in range(KILLS):
            process = start(secure_exchange, subscribe_args("GM0363", name, out), log)
            time.sleep(moments.uniform(2.0, 5.0))
            kill(process)
    finally:
        publishing.join(timeout=300)
    assert not failures, failures
    drain = subprocess.run(
        [SIGEX, *subscribe_args("GM0363", name, out, "--idle-timeout", "5")],
        env=sigex_env(secure_exchange),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert drain.returncode == 0, drain.stderr
    lines = lines_of(out)
    ids = Counter(line["message_id"] for line in lines)
    repeated = {message_id: n for message_id, n in ids.items() if n > 1}
    got = Counter(line["fields"]["signal_id"] for line in lines)
    lost = wanted - set(got)
    assert not repeated, f"{len(repeated)} lines repeated (seed {seed})"
    assert not lost, f"{len(lost)} of {len(wanted)} signals lost (seed {seed})"
    assert all(got[signal_id] == 1 for signal_id in wanted)
    assert all(line["legal_basis"] and line["agreement"] for line in lines)


@pytest.mark.slow
def test_sigex_subscribe_restarted_while_a_dead_member_holds_its_partitions_takes_everything(
    secure_exchange: SecureExchange, gateway: None, tmp_path: Path
) -> None:
    name = f"held-{uuid.uuid4().hex[:8]}"
    holder = hold_partitions(
        secure_exchange,
        "GM0599",
        f"{subscriber_group_prefix('GM0599')}{name}",
        session_ms=20_000,
        topics=[delivery_topic(SIGNAL, "GM0599")],
    )
    kill(holder)  # its partitions stay assigned to it until its session ends
    records = mismatches(300, "GM0599")
    publish(secure_exchange, records)
    out = tmp_path / "GM0599.jsonl"
    drain = subprocess.run(
        [SIGEX, *subscribe_args("GM0599", name, out, "--idle-timeout", "3")],
        env=sigex_env(secure_exchange),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    got = {line["fields"]["signal_id"] for line in lines_of(out)} if out.exists() else set()
    missing = {r["signal_id"] for r in records} - got
    assert drain.returncode == 0, drain.stderr
    assert not missing, f"exit 0 with {len(missing)} of {len(records)} signals not taken"


@pytest.mark.slow
def test_a_subscriber_that_holds_its_partitions_but_fetches_nothing_rejoins_and_drains(
    secure_exchange: SecureExchange, gateway: None
) -> None:
    state = secure_exchange.state_dir
    records = mismatches(50, "GM0518")
    with Subscriber(
        identity=load_party(state, "GM0518"),
        directory=load_directory(state),
        catalogue=load_catalogue(),
        connection=secure_exchange.connection("GM0518"),
        purposes=(PURPOSE,),
        policy=load_policy(),
        signals=(SIGNAL,),
        name=f"stall-{uuid.uuid4().hex[:8]}",
        stall_seconds=3,
    ) as subscriber:
        got: list[str] = []
        keep = lambda received: got.append(str(received.fields["signal_id"]))  # noqa: E731
        deadline = time.monotonic() + 120
        while not subscriber.assigned and time.monotonic() < deadline:
            subscriber.poll(keep, timeout_ms=500)
        # the kafka-python failure seen in the field: partitions held, nothing ever fetched
        subscriber._consumer.pause(*subscriber._consumer.assignment())
        publish(secure_exchange, records)
        while time.monotonic() < deadline and sum((subscriber.lag() or {}).values()) < 50:
            time.sleep(0.5)  # the gateway delivers them; the paused consumer takes none
        subscriber.drain(keep, idle_seconds=5)
    assert subscriber.rejoins >= 1
    assert {r["signal_id"] for r in records} <= set(got)


# -- the audit indexer -----------------------------------------------------------------------


SUBJECT = SubjectPseudonymiser(b"k" * 32).pseudonym("111222333")


def access_record(number: int, run: str) -> AccessRecord:
    return delivered_record(
        number,
        SUBJECT,
        trace_id=f"{run}{number:024x}",
        disclosed_fields=("bsn", "address"),
        message_id=f"m-{run}-{number}",
    )


def write_audit_records(
    exchange: SecureExchange, records: list[AccessRecord], pause: float
) -> None:
    """As the gateway does: access records onto ``sigex.audit``."""
    producer = KafkaProducer(acks="all", **exchange.connection(Role.GATEWAY).options())
    try:
        for start_at in range(0, len(records), 100):
            for record in records[start_at : start_at + 100]:
                producer.send(AUDIT_TOPIC, key=record.subject.encode(), value=record.to_bytes())
            producer.flush()
            time.sleep(pause)
    finally:
        producer.close()


def traces_in(db: Path, run: str) -> Counter[str]:
    with AccessLogStore.open(str(db)) as store:
        return Counter(
            record.trace_id
            for row in store.leaf_rows()
            if (record := AccessRecord.from_bytes(row.entry)).trace_id.startswith(run)
        )


def index_args(db: Path, group: str, *extra: str) -> list[str]:
    return ["audit", "index", "--db", str(db), "--group-id", group, "--no-metrics", *extra]


@pytest.mark.slow
def test_the_audit_indexer_killed_ten_times_keeps_every_record_once_and_publishes_its_tree(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    records = [access_record(n, run) for n in range(1, 3_001)]
    db = tmp_path / "audit.sqlite"
    group = f"sigex-audit-crash-{run}"
    args = index_args(db, group, "--publish-every", "1000000")  # publishing only when it stops
    log = tmp_path / "index.log"
    seed = random.randrange(10**6)
    moments = random.Random(seed)
    writing, failures = in_background(write_audit_records, secure_exchange, records, 0.5)
    try:
        for _ in range(KILLS - 1):
            process = start(secure_exchange, args, log)
            time.sleep(moments.uniform(2.0, 5.0))
            kill(process)
    finally:
        writing.join(timeout=300)
    assert not failures, failures
    # the last kill comes after every record is in the store: only a checkpoint is missing
    process = start(secure_exchange, args, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(traces_in(db, run)) < len(records):
        time.sleep(1)
    kill(process)
    drain = subprocess.run(
        [SIGEX, *index_args(db, group, "--idle-exit", "3")],
        env=sigex_env(secure_exchange),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert drain.returncode == 0, drain.stderr
    traces = traces_in(db, run)
    assert len(traces) == len(records), f"{len(records) - len(traces)} lost (seed {seed})"
    assert set(traces.values()) == {1}
    with AccessLogStore.open(str(db)) as store:
        size, root = store.size(), store.root()
    published = read_published_checkpoints(secure_exchange.connection("AUDIT"))
    assert any(c.tree_size == size and c.root == root for c in published), (
        f"no checkpoint of the final tree ({size} records) on the topic: "
        f"{[c.tree_size for c in published]}"
    )


@pytest.mark.slow
def test_an_indexer_restarted_while_a_dead_member_holds_the_partitions_does_not_stop_with_lag(
    secure_exchange: SecureExchange, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    group = f"sigex-audit-held-{run}"
    holder = hold_partitions(
        secure_exchange,
        "AUDIT",
        group,
        session_ms=40_000,  # longer than the old indexer's 30 s wait for partitions
        pattern=subscription(AUDIT_TOPIC, RECEIPTS_PREFIX),
    )
    kill(holder)
    records = [access_record(n, run) for n in range(1, 501)]
    write_audit_records(secure_exchange, records, 0.0)
    db = tmp_path / "audit.sqlite"
    drain = subprocess.run(
        [SIGEX, *index_args(db, group, "--idle-exit", "3")],
        env=sigex_env(secure_exchange),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    traces = traces_in(db, run) if db.exists() else Counter[str]()
    assert drain.returncode == 0, drain.stderr
    assert len(traces) == len(records), (
        f"exit 0 with {len(records) - len(traces)} of {len(records)} records not indexed"
    )
