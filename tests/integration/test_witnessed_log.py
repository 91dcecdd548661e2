"""The witnessed access log end to end: Kafka, the indexer, the audit API, five witnesses.

The log is filled the way it is in operation: access records on an audit topic of a real
broker, consumed by the indexer, which signs C2SP checkpoints and publishes them on a
checkpoint topic. The audit API serves it over mutual TLS, and the witnesses are the
``sigex audit witness --as PARTY --once`` command, each with its party's federation
certificate. Then a log operator who holds the audit key and the database tries the
three attacks of issue 16; each time a witness refuses, exits 3 and keeps the two
conflicting signed checkpoints, and ``sigex audit verify --alarms`` shows them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from sigex.audit.api import AuditApi, make_server, server_tls_context
from sigex.audit.cosignature import with_cosignatures
from sigex.audit.indexer import IndexerSettings, run_indexer
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.tls import api_identity
from sigex.audit.witness_policy import Witnessing, load_witness_policy
from sigex.clock import SystemClock
from sigex.exchange.access_record import AccessRecord
from sigex.exchange.protocol import pack_access_records
from sigex.exchange.topology import WITNESS_ALARM_TOPIC
from sigex.identity import init_federation, load_directory, load_party, read_parties
from sigex.roles import Role
from sigex.transport import KafkaConnection
from tests.access_records import delivered_record
from tests.c2sp_reader import cosignature_time, read_checkpoint
from tests.integration.conftest import REPO
from tests.witnessing import copy_sqlite

pytestmark = pytest.mark.integration

SIGEX = str(Path(sys.executable).parent / "sigex")
POLICY = load_witness_policy()


@dataclass
class Served:
    url: str
    stop: threading.Event


class Operator:
    """The log's operator: the audit key, the database, and the audit API in front of it."""

    def __init__(self, state: Path, bootstrap: str, run: str) -> None:
        self.state = state
        self.bootstrap = bootstrap
        self.audit_topic, self.checkpoint_topic = f"w{run}.audit", f"w{run}.checkpoints"
        self.key = load_party(state, Role.AUDIT).signing_key
        self.numbers = iter(range(10**6))
        self.servers: list[object] = []

    def record(self) -> AccessRecord:
        number = next(self.numbers)
        return delivered_record(
            number, f"{number:064x}", trace_id=uuid.uuid4().hex, message_id=str(uuid.uuid4())
        )

    def through_kafka(self, db: Path, count: int) -> None:
        """``count`` records onto the audit topic, indexed into ``db`` and checkpointed."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        for packed in pack_access_records([self.record().to_bytes() for _ in range(count)]):
            producer.send(self.audit_topic, value=packed)
        producer.flush()
        producer.close()
        with AccessLogStore.open(str(db)) as store:
            run_indexer(
                store,
                self.key,
                SystemClock(),
                IndexerSettings(
                    connection=KafkaConnection(self.bootstrap),
                    group_id=f"sigex-audit-{self.audit_topic}",
                    idle_exit_seconds=3,
                    audit_topic=self.audit_topic,
                    receipts_prefix=f"{self.audit_topic}.receipts.",
                    checkpoint_topic=self.checkpoint_topic,
                    origin=POLICY.origin,
                ),
            )

    def directly(self, db: Path, records: list[AccessRecord] | int) -> None:
        """What an operator with the database and the key can do: append and sign."""
        if isinstance(records, int):
            records = [self.record() for _ in range(records)]
        with AccessLogStore.open(str(db)) as store:
            store.append(records)
            store.checkpoint(self.key, SystemClock(), POLICY.origin)

    def serve(self, db: Path) -> str:
        directory = load_directory(self.state)
        api = AuditApi(
            lambda: AccessLogStore.open(str(db)),
            {p.code: p.kind for p in directory.parties},
            None,
            None,
            Witnessing(POLICY, lambda: load_directory(self.state), SystemClock()),
        )
        certificate, key = api_identity(self.state)
        context = server_tls_context(certificate, key, self.state / "federation" / "ca.pem")
        server = make_server(api, "127.0.0.1", 0, context, generations=directory.generations)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("witnessed")
    init_federation(state, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
    return state


@pytest.fixture
def operator(kafka_bootstrap: str, federation: Path, tmp_path: Path) -> Iterator[Operator]:
    state = tmp_path / "state"  # the federation's keys; the witnesses' memory is this test's
    shutil.copytree(federation / "federation", state / "federation")
    run = uuid.uuid4().hex[:8]
    made = Operator(state, kafka_bootstrap, run)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(made.audit_topic, 1, 1), NewTopic(made.checkpoint_topic, 1, 1)])
    if WITNESS_ALARM_TOPIC not in admin.list_topics():
        admin.create_topics([NewTopic(WITNESS_ALARM_TOPIC, 1, 1)])
    yield made
    made.close()
    admin.delete_topics([made.audit_topic, made.checkpoint_topic])
    admin.close()


def _environment() -> dict[str, str]:
    """A test process's environment, without a broker to reach with a party's TLS."""
    env = {k: v for k, v in os.environ.items() if k != "SIGEX_BOOTSTRAP"}
    env["SIGEX_ENV"] = "test"  # --plaintext, for the test broker
    return env


def _state(operator: Operator) -> list[str]:
    return ["--state-dir", str(operator.state)]


def witness(
    operator: Operator, party: str, url: str, *publish: str
) -> subprocess.CompletedProcess[str]:
    """One round of ``sigex audit witness``; ``publish``: where it publishes an alarm."""
    command = [SIGEX, "audit", "witness", "--as", party, "--api", url, "--once"]
    return subprocess.run(
        [*command, *_state(operator), *publish],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_environment(),
    )


def witnesses(operator: Operator, parties: tuple[str, ...], url: str) -> dict[str, int]:
    return {party: witness(operator, party, url).returncode for party in parties}


def verify(operator: Operator, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIGEX, "audit", "verify", "--db", str(db), *_state(operator), "--offline", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def alarms_of(operator: Operator, party: str) -> list[Path]:
    return sorted((operator.state / "witness" / party / "alarms").glob("*.json"))


def test_the_published_checkpoint_is_a_c2sp_note_the_witnesses_co_sign(
    operator: Operator, tmp_path: Path
) -> None:
    db = tmp_path / "audit.sqlite"
    operator.through_kafka(db, 30)
    url = operator.serve(db)
    assert witnesses(operator, POLICY.witnesses, url) == dict.fromkeys(POLICY.witnesses, 0)
    operator.through_kafka(db, 12)
    assert witnesses(operator, POLICY.witnesses, url) == dict.fromkeys(POLICY.witnesses, 0)

    # the checkpoint on the topic is the bare signed note: a reader from the spec reads it
    consumer = KafkaConsumer(bootstrap_servers=operator.bootstrap, enable_auto_commit=False)
    partition = TopicPartition(operator.checkpoint_topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = [m.value for batch in consumer.poll(timeout_ms=5000).values() for m in batch]
    consumer.close()
    directory = load_directory(operator.state)
    log_key = directory.party(Role.AUDIT).signing_keys[-1].public_key
    read = read_checkpoint(values[-1], POLICY.origin, log_key)
    assert read.tree_size == 42

    verified = verify(operator, db)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("witnessed: the checkpoint at 42 records; 5 of 5")
    with AccessLogStore.open(str(db), create=False) as store:
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        note = with_cosignatures(checkpoint, store.cosignatures(checkpoint)).encode()
    for party in POLICY.witnesses:
        key = directory.party(party).signing_keys[-1].public_key
        assert cosignature_time(note, f"sigex.nl/witness/{party}", key) is not None


def test_a_split_view_is_refused_by_the_witness_that_sees_both(
    operator: Operator, tmp_path: Path
) -> None:
    """Attack (a): two checkpoints of one size, shown to two groups of witnesses."""
    honest, fork = tmp_path / "audit.sqlite", tmp_path / "fork.sqlite"
    operator.through_kafka(honest, 20)
    honest_url = operator.serve(honest)
    assert set(witnesses(operator, POLICY.witnesses, honest_url).values()) == {0}
    copy_sqlite(honest, fork)
    operator.through_kafka(honest, 5)
    operator.directly(fork, 5)  # the same size, without the records someone wants hidden
    fork_url = operator.serve(fork)

    assert witnesses(operator, ("NLA", "UWV", "BD"), honest_url) == dict.fromkeys(
        ("NLA", "UWV", "BD"), 0
    )
    assert witnesses(operator, ("RVIG", "GM0363"), fork_url) == {"RVIG": 0, "GM0363": 0}
    plain = ("--bootstrap", operator.bootstrap, "--plaintext")
    refused = witness(operator, "BD", fork_url, *plain)
    assert refused.returncode == 3, refused.stderr
    assert "SPLIT_VIEW" in refused.stderr
    assert f"published on {WITNESS_ALARM_TOPIC}" in refused.stderr
    [evidence] = alarms_of(operator, "BD")

    # the fork's newest checkpoint has two co-signatures: an auditor does not accept it
    fork_verified = verify(operator, fork)
    assert "latest checkpoint (25 records): 2 of 5 witnesses co-signed (GM0363, RVIG)" in (
        fork_verified.stdout
    )
    assert "5 newer record(s) are not witnessed yet" in fork_verified.stdout
    # and with BD's evidence, verify says the operator signed both, and which it now shows
    shown = verify(operator, fork, "--alarms", str(evidence))
    assert shown.returncode == 1
    assert "ALARM by BD (SPLIT_VIEW)" in shown.stdout
    assert "the log now matches the later checkpoint" in shown.stdout
    honest_verified = verify(operator, honest, "--alarms", str(evidence))
    assert "the log now matches the earlier checkpoint" in honest_verified.stdout
    # the alarm reached the broker: an auditor's verify reads it there, with no file
    from_topic = subprocess.run(
        [SIGEX, "audit", "verify", "--db", str(honest), *_state(operator), *plain],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_environment(),
    )
    assert from_topic.returncode == 1, from_topic.stdout + from_topic.stderr
    assert "ALARM by BD (SPLIT_VIEW)" in from_topic.stdout
    assert f"evidence: topic {WITNESS_ALARM_TOPIC}" in from_topic.stdout


def test_a_rolled_back_log_is_refused(operator: Operator, tmp_path: Path) -> None:
    """Attack (b): the database restored from a backup, and signed again."""
    db, backup = tmp_path / "audit.sqlite", tmp_path / "backup.sqlite"
    operator.through_kafka(db, 20)
    copy_sqlite(db, backup)
    operator.through_kafka(db, 10)
    url = operator.serve(db)
    assert set(witnesses(operator, POLICY.witnesses, url).values()) == {0}

    copy_sqlite(backup, db)  # the rollback; the API serves the restored database
    operator.directly(db, 0)
    rolled = witness(operator, "UWV", url)
    assert rolled.returncode == 3 and "ROLLBACK" in rolled.stderr
    operator.directly(db, 15)  # regrown past the co-signed size, with other records
    assert witnesses(operator, POLICY.witnesses, url) == dict.fromkeys(POLICY.witnesses, 3)
    shown = verify(operator, db, "--alarms", str(operator.state / "witness"))
    assert shown.returncode == 1
    assert "ALARM by NLA (INCONSISTENT)" in shown.stdout
    assert "ALARM by UWV (ROLLBACK)" in shown.stdout


def test_a_dropped_record_is_refused(operator: Operator, tmp_path: Path) -> None:
    """Attack (c): one record removed, the log rebuilt from there and signed again."""
    db, rebuilt = tmp_path / "audit.sqlite", tmp_path / "rebuilt.sqlite"
    operator.through_kafka(db, 24)
    url = operator.serve(db)
    assert set(witnesses(operator, POLICY.witnesses, url).values()) == {0}
    with AccessLogStore.open(str(db), create=False) as store:
        records = [stored.record for stored in store.query_all(RecordFilter())]
    operator.directly(rebuilt, [*records[:9], *records[10:], operator.record(), operator.record()])
    rebuilt_url = operator.serve(rebuilt)
    assert witnesses(operator, POLICY.witnesses, rebuilt_url) == dict.fromkeys(POLICY.witnesses, 3)
    kinds = {
        path.name.split("-")[-1]
        for party in POLICY.witnesses
        for path in alarms_of(operator, party)
    }
    assert kinds == {"inconsistent.json"}
