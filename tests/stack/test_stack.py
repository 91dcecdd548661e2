"""The stack test: partners on the host, signals through the three-broker stack, and drills.

Each drill counts what was published, delivered, lost and duplicated; the figures
and how long recovery took are printed (``-s``) for docs/operations.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sigex.exchange.protocol import to_json_value
from sigex.policies.compiler import load_policy
from tests.signal_records import frequent_mover
from tests.stack.conftest import PORTS, Stack
from tests.unit.producers.test_producers_publish_file import good_record
from tests.unit.schemas.conftest import make_bsn

SIGEX = str(Path(sys.executable).with_name("sigex"))
#: The reference finders: what each finds, who publishes it, as which signal, for what.
KINDS = (
    ("frequent-movers", "RVIG", "laa.frequent-mover", "LAA_SIGNAAL"),
    ("bsn-mismatch", "UWV", "payroll.bsn-mismatch", "SUWI64_ARB"),
    ("admission", "NLA", "waadi.admission-violation", "SUWI64_FISC"),
)
MUNICIPALITIES = frozenset(load_policy().parties_of_kind("municipality"))


def sigex(
    stack: Stack, *args: str, timeout: float = 300, state_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SIGEX_ENV": "production",
        "SIGEX_STATE_DIR": str(state_dir or stack.state_dir),
        "SIGEX_BOOTSTRAP": stack.bootstrap,
    }
    return subprocess.run(
        [SIGEX, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def payroll_file(path: Path, count: int, municipality: str = "GM0363") -> Path:
    with path.open("w", encoding="utf-8") as out:
        for _ in range(count):
            record = good_record(uuid.uuid4().int % 10**6 + 10_000)
            record["signal_id"] = str(uuid.uuid4())
            record["municipality"] = municipality
            out.write(json.dumps(record) + "\n")
    return path


def publish(stack: Stack, path: Path, purpose: str) -> None:
    done = sigex(stack, "publish", "--as", "UWV", "--signal", "payroll.bsn-mismatch",
                 "--purpose", purpose, str(path))  # fmt: skip
    assert done.returncode == 0, done.stderr


def signal_ids(*paths: Path) -> set[str]:
    return {
        json.loads(line)["signal_id"]
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
    }


def message_ids(out: Path, ours: set[str]) -> set[str]:
    """The message ids of the deliveries of ``ours`` (signal ids) a subscriber wrote to ``out``."""
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    deliveries = (json.loads(line) for line in lines)
    return {str(d["message_id"]) for d in deliveries if str(d["fields"]["signal_id"]) in ours}


def received(
    stack: Stack, party: str, purpose: str, name: str, out: Path, ours: set[str] | None = None
) -> Counter[str]:
    """Drain ``party``'s deliveries into ``out``; each signal id (of ``ours``) with its count.

    Counted by the signal's own id, so a copy under another message id shows as a
    duplicate too; deliveries of earlier tests (the group reads from the start) are left out.
    """
    done = sigex(stack, "subscribe", "--as", party, "--purpose", purpose, "--name", name,
                 "--out", str(out), "--idle-timeout", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    ids = (str(json.loads(line)["fields"]["signal_id"]) for line in lines)
    return Counter(i for i in ids if ours is None or i in ours)


def drain_until(
    stack: Stack, party: str, purpose: str, name: str, out: Path, ours: set[str], seconds: float
) -> Counter[str]:
    deadline = time.monotonic() + seconds
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        counts = received(stack, party, purpose, name, out, ours)
        if len(counts) >= len(ours):
            break
    return counts


def test_each_lawful_recipient_gets_exactly_its_signals(stack: Stack, tmp_path: Path) -> None:
    to_nla = payroll_file(tmp_path / "nla.jsonl", 30)
    to_gm = payroll_file(tmp_path / "gm.jsonl", 20, "GM0599")
    publish(stack, to_nla, "SUWI64_ARB")
    publish(stack, to_gm, "BRP_TERUGMELDING")
    nla_ids, gm_ids = signal_ids(to_nla), signal_ids(to_gm)
    nla = drain_until(stack, "NLA", "SUWI64_ARB", "stack-a", tmp_path / "nla.out", nla_ids, 180)
    gm = drain_until(
        stack, "GM0599", "BRP_TERUGMELDING", "stack-a", tmp_path / "gm.out", gm_ids, 180
    )
    assert set(nla) == nla_ids and sum(nla.values()) == 30
    assert set(gm) == gm_ids and sum(gm.values()) == 20
    # a party without an agreement for this signal and purpose has nothing to take
    other = received(stack, "GM0363", "BRP_TERUGMELDING", "stack-a", tmp_path / "none.out")
    assert sum(other.values()) == 0


def test_every_kind_of_signal_reaches_exactly_its_lawful_recipients(
    stack: Stack, tmp_path: Path
) -> None:
    """The three reference finders' signals, each from its own party, over the stack."""
    data = tmp_path / "data"
    generated = sigex(stack, "data", "generate", "--people", "3000", "--out", str(data))
    assert generated.returncode == 0, generated.stderr
    found: dict[str, list[dict[str, object]]] = {}
    for kind, party, signal, purpose in KINDS:
        out = tmp_path / f"{kind}.jsonl"
        done = sigex(stack, "data", "find", "--kind", kind, "--in", str(data), "--out", str(out))
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        if kind == "frequent-movers":  # the synthetic towns outside the federation have no party
            records = [r for r in records if r["municipality"] in MUNICIPALITIES]
            out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        assert records, f"the {kind} finder found nothing to publish"
        sent = sigex(stack, "publish", "--as", party, "--signal", signal, "--purpose", purpose,
                     str(out))  # fmt: skip
        # the policy may refuse some (listed by line, audited); the rest must arrive
        refused = {int(n) for n in re.findall(r"^line (\d+): refused", sent.stderr, re.M)}
        assert sent.returncode == (1 if refused else 0), sent.stderr
        found[kind] = [r for line, r in enumerate(records, 1) if line not in refused]
        assert found[kind], f"every {kind} signal was refused: {sent.stderr}"
    # frequent movers go to the municipality the person lives in, and to no other
    by_municipality: dict[str, set[str]] = defaultdict(set)
    for record in found["frequent-movers"]:
        by_municipality[str(record["municipality"])].add(str(record["signal_id"]))
    expected = {
        **{(gm, "LAA_SIGNAAL"): ids for gm, ids in by_municipality.items()},
        ("NLA", "SUWI64_ARB"): {str(r["signal_id"]) for r in found["bsn-mismatch"]},
        ("BD", "SUWI64_FISC"): {str(r["signal_id"]) for r in found["admission"]},
    }
    for (party, purpose), ids in expected.items():
        out = tmp_path / f"{party}-{purpose}.out"
        counts = drain_until(stack, party, purpose, "every-kind", out, ids, 180)
        assert set(counts) == ids and sum(counts.values()) == len(ids), (party, purpose)
    # a municipality without frequent movers in this dataset receives none of them
    others = sorted(MUNICIPALITIES - set(by_municipality))
    if others:
        none = received(stack, others[0], "LAA_SIGNAAL", "every-kind", tmp_path / "none.out",
                        {str(r["signal_id"]) for r in found["frequent-movers"]})  # fmt: skip
        assert sum(none.values()) == 0


def test_the_audit_api_answers_and_the_log_verifies(stack: Stack) -> None:
    deadline = time.monotonic() + 120
    answer: dict[str, object] = {}
    while time.monotonic() < deadline and not answer.get("tree_size"):
        try:
            answer = stack.api("/v1/checkpoints/latest")
        except OSError:
            time.sleep(3)
    assert isinstance(answer.get("tree_size"), int) and answer["tree_size"] > 0
    assert answer.get("signature")
    assert str(answer.get("note", "")).startswith("sigex.nl/access-log/"), "a C2SP checkpoint"
    # the five witness containers co-sign it over mutual TLS; the policy needs three
    witnessed: dict[str, object] = {}
    while time.monotonic() < deadline + 60 and not witnessed:
        try:
            witnessed = stack.api("/v1/checkpoints/witnessed")
        except OSError:
            time.sleep(3)
    verdict = witnessed.get("witnesses")
    assert isinstance(verdict, dict) and verdict["met"], witnessed
    verified = stack.audit("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("witnessed: the checkpoint at "), verified.stdout
    # the auditor's console answers the auditor's certificate, and logs the look first
    page = stack.console("/overview")
    assert "<h1>Overview</h1>" in page


def test_init_provisioned_for_the_three_brokers_it_found(stack: Stack) -> None:
    logs = stack.docker("logs", stack.container("init"))
    assert "3 broker(s): topics with replication factor 3, min.insync.replicas 2" in logs, logs


def _drill(
    stack: Stack,
    tmp_path: Path,
    name: str,
    action: Callable[[], object],
    restore: Callable[[], object],
) -> set[str]:
    """Publish 300 signals to the NLA with ``action`` done after the first 100; count them.

    Returns the message ids under which the NLA received them.
    """
    signals = 300
    files = [payroll_file(tmp_path / f"{name}-{n}.jsonl", signals // 3) for n in range(3)]
    started = time.monotonic()
    publish(stack, files[0], "SUWI64_ARB")
    action()
    acted = time.monotonic()
    publishing = threading.Thread(
        target=lambda: [publish(stack, path, "SUWI64_ARB") for path in files[1:]]
    )
    publishing.start()
    publishing.join(timeout=600)
    ours = signal_ids(*files)
    out = tmp_path / f"{name}.out"
    counts = drain_until(stack, "NLA", "SUWI64_ARB", f"drill-{name}", out, ours, 400)
    recovered = time.monotonic() - acted
    restore()
    stack.wait_healthy()
    delivered = sum(counts.values())
    duplicated = delivered - len(counts)
    print(  # the drill's figures, for docs/operations.md
        f"\ndrill {name}: published {signals}, delivered {len(counts)}, lost "
        f"{signals - len(counts)}, duplicated {duplicated}, all delivered "
        f"{recovered:.0f} s after the fault, {time.monotonic() - started:.0f} s in all"
    )
    assert set(counts) == ours and duplicated == 0
    return message_ids(out, ours)


def under_replicated(stack: Stack) -> list[str]:
    """Partitions of sigex's topics whose in-sync replicas are fewer than their replicas."""
    admin = stack.admin()
    try:
        names = [t for t in admin.list_topics() if t.startswith("sigex.")]
        return [
            f"{topic['name']}/{partition['partition_index']}"
            for topic in admin.describe_topics(names)
            for partition in topic["partitions"]
            if len(partition["isr_nodes"]) < len(partition["replica_nodes"])
        ]
    finally:
        admin.close()


def test_drill_a_broker_killed_mid_stream(stack: Stack, tmp_path: Path) -> None:
    broker = stack.container("kafka-2")
    _drill(
        stack, tmp_path, "broker",
        lambda: stack.docker("kill", broker),
        lambda: stack.docker("start", broker),
    )  # fmt: skip
    # the broker rejoins: every partition has all its replicas in sync again
    started = time.monotonic()
    while (lagging := under_replicated(stack)) and time.monotonic() - started < 180:
        time.sleep(5)
    assert not lagging, f"still under-replicated after 180 s: {lagging[:5]}"
    synced = time.monotonic() - started
    print(f"drill broker: every replica in sync {synced:.0f} s after it was healthy")


def test_drill_a_gateway_killed_mid_stream(stack: Stack, tmp_path: Path) -> None:
    gateway = stack.container("gateway", 1)
    _drill(
        stack, tmp_path, "gateway",
        lambda: stack.docker("kill", gateway),
        lambda: stack.docker("start", gateway),
    )  # fmt: skip


def logged(stack: Stack, kind: str, since: datetime) -> set[str]:
    """Message ids of the NLA's access records of ``kind`` since ``since``, all pages."""
    ids: set[str] = set()
    query = {"recipient": "NLA", "kind": kind, "since": since.isoformat(), "limit": "1000"}
    while True:
        page = stack.api(f"/v1/records?{urllib.parse.urlencode(query)}")
        ids.update(str(entry["record"]["message_id"]) for entry in page["records"])
        if page["next_after"] is None:
            return ids
        query["after"] = str(page["next_after"])


def test_drill_postgres_killed_mid_stream(stack: Stack, tmp_path: Path) -> None:
    """The access log's database killed and started again while signals flow: deliveries
    go on, the indexer catches up by itself, and every delivery is in the log."""
    postgres = stack.container("postgres")
    since = datetime.now(UTC) - timedelta(seconds=5)

    def kill_and_start() -> None:
        stack.docker("kill", postgres)
        time.sleep(10)
        stack.docker("start", postgres)

    delivered = _drill(stack, tmp_path, "postgres", kill_and_start, lambda: None)
    started = time.monotonic()
    missing: set[str] = delivered
    while time.monotonic() - started < 180:
        missing = delivered - (logged(stack, "delivered", since) & logged(stack, "received", since))
        if not missing:
            break
        time.sleep(5)
    assert not missing, f"{len(missing)} deliveries not in the access log after 180 s"
    print(f"drill postgres: the access log complete {time.monotonic() - started:.0f} s after")
    verified = stack.audit("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the auditor's console answers the auditor's certificate, and logs the look first
    page = stack.console("/overview")
    assert "<h1>Overview</h1>" in page


def test_a_revoked_certificate_and_a_foreign_one_are_refused(stack: Stack, tmp_path: Path) -> None:
    party, purpose = "GM0599", "BRP_TERUGMELDING"
    # as it is now, the party's certificate reads its deliveries
    before = received(stack, party, purpose, "stack-a", tmp_path / "before.out")
    assert sum(before.values()) == 0  # (the first test's group read them all)
    revoked = stack.compose(
        "run", "--rm", "-T", "--entrypoint", "sigex", "init", "keys", "revoke", party,
        "--bootstrap", "kafka-1:9092,kafka-2:9092,kafka-3:9092", check=False,
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    old = sigex(stack, "subscribe", "--as", party, "--purpose", purpose, "--name", "stack-a",
                "--out", str(tmp_path / "old.out"), "--idle-timeout", "10")  # fmt: skip
    assert old.returncode != 0
    assert "authoriz" in old.stderr.lower(), old.stderr
    assert "Traceback" not in old.stderr
    # the successor certificate, from the federation volume, is let in
    renewed = tmp_path / "renewed"
    stack.extract_federation(renewed)
    new = sigex(stack, "subscribe", "--as", party, "--purpose", purpose, "--name", "stack-a",
                "--out", str(tmp_path / "new.out"), "--idle-timeout", "10",
                state_dir=renewed)  # fmt: skip
    assert new.returncode == 0, new.stderr
    # a certificate from another federation's CA: the TLS handshake is refused
    foreign = tmp_path / "foreign"
    made = subprocess.run(
        [SIGEX, "keys", "init", "--state-dir", str(foreign)],
        env={"PATH": "/usr/bin:/bin", "SIGEX_ENV": "development"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    stranger = sigex(stack, "subscribe", "--as", "NLA", "--purpose", "SUWI64_ARB", "--name",
                     "stack-a", "--out", str(tmp_path / "foreign.out"), "--idle-timeout", "10",
                     state_dir=foreign)  # fmt: skip
    assert stranger.returncode != 0
    assert "certificate" in stranger.stderr.lower() or "tls" in stranger.stderr.lower()
    assert "Traceback" not in stranger.stderr
    print(f"revoked: {old.stderr.strip()}\nforeign: {stranger.stderr.strip()}")


def _fingerprint(federation: Path) -> str:
    """One digest of every file in the federation: keys, certificates, the directory."""
    digest = hashlib.sha256()
    for path in sorted(p for p in federation.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(federation)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_drill_down_and_up_keeps_everything(stack: Stack, tmp_path: Path) -> None:
    """``compose down`` and ``up`` with the volumes kept: keys, broker data, offsets and
    the access log survive; nothing is delivered twice; the log verifies."""
    first = payroll_file(tmp_path / "first.jsonl", 50)
    publish(stack, first, "SUWI64_ARB")
    first_ids = signal_ids(first)
    got = drain_until(stack, "NLA", "SUWI64_ARB", "downup", tmp_path / "a.out", first_ids, 180)
    assert set(got) == first_ids
    keys_before = _fingerprint(stack.extract_federation(tmp_path / "before"))
    size_before = int(stack.api("/v1/checkpoints/latest")["tree_size"])

    started = time.monotonic()
    stack.compose("down")
    stack.compose("up", "-d")
    stack.wait_healthy()
    back = time.monotonic() - started

    assert _fingerprint(stack.extract_federation(tmp_path / "after")) == keys_before
    second = payroll_file(tmp_path / "second.jsonl", 50)
    publish(stack, second, "SUWI64_ARB")
    ours = first_ids | signal_ids(second)
    drain_until(stack, "NLA", "SUWI64_ARB", "downup", tmp_path / "b.out", signal_ids(second), 240)
    lines = (tmp_path / "b.out").read_text(encoding="utf-8").splitlines()
    again = Counter(str(json.loads(line)["fields"]["signal_id"]) for line in lines)
    # the group's offsets survived: nothing of the first round comes again, the second once
    assert not set(again) & first_ids, "delivered again after down and up"
    assert {i: again[i] for i in signal_ids(second)} == dict.fromkeys(signal_ids(second), 1)
    # the broker's data survived: a new group still finds the first round on the topic
    everything = received(stack, "NLA", "SUWI64_ARB", "downup-new", tmp_path / "c.out", ours)
    assert set(everything) == ours and sum(everything.values()) == len(ours)
    deadline = time.monotonic() + 120
    while int(stack.api("/v1/checkpoints/latest")["tree_size"]) <= size_before:
        assert time.monotonic() < deadline, "the access log did not grow after up"
        time.sleep(5)
    verified = stack.audit("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the auditor's console answers the auditor's certificate, and logs the look first
    page = stack.console("/overview")
    assert "<h1>Overview</h1>" in page
    print(f"drill down/up: healthy again {back:.0f} s after down; 0 re-delivered")


def test_a_municipality_answers_through_its_partner_node(stack: Stack, tmp_path: Path) -> None:
    """RVIG publishes from the host; in the stack, GM0363's case system takes each signal
    from GM0363's partner node over mutual TLS and answers it; RVIG receives the answers."""
    detected = datetime.now(UTC) - timedelta(minutes=1)
    records = [
        to_json_value(frequent_mover("GM0363", make_bsn(uuid.uuid4().int % 10**8), detected))
        for _ in range(5)
    ]
    path = tmp_path / "movers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    sent = sigex(stack, "publish", "--as", "RVIG", "--signal", "laa.frequent-mover",
                 "--purpose", "LAA_SIGNAAL", str(path))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    ours = {str(r["signal_id"]) for r in records}
    answered: Counter[str] = Counter()
    out = tmp_path / "answers.out"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and set(answered) != ours:
        done = sigex(stack, "subscribe", "--as", "RVIG", "--purpose", "LAA_TERUGKOPPELING",
                     "--name", "node-answers", "--out", str(out),
                     "--idle-timeout", "15")  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
        replies = (json.loads(line)["fields"]["in_reply_to"] for line in lines)
        answered = Counter(r for r in replies if r in ours)
    assert set(answered) == ours and sum(answered.values()) == len(ours), answered
    # only GM0363's own systems get in: a client without its CA's certificate does not
    anonymous = ssl.create_default_context()
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    port = PORTS["NODE_GM0363_HOST_PORT"]
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(f"https://localhost:{port}/livez", context=anonymous, timeout=10)
