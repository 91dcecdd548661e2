"""The stack test: partners on the host, signals through the three-broker stack, and drills.

Each drill counts what was published, delivered, lost and duplicated; the figures
and how long recovery took are printed (``-s``) for docs/operations.md.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.stack.conftest import Stack
from tests.unit.producers.test_producers_publish_file import good_record

SIGEX = str(Path(sys.executable).with_name("sigex"))


def sigex(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SIGEX_ENV": "production",
        "SIGEX_STATE_DIR": str(stack.state_dir),
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


def test_the_audit_api_answers_with_a_signed_checkpoint(stack: Stack) -> None:
    federation = stack.state_dir / "federation"
    context = ssl.create_default_context(cafile=str(federation / "ca.pem"))
    auditor = federation / "parties" / "AUDITOR"
    context.load_cert_chain(str(auditor / "tls.pem"), str(auditor / "tls.key"))
    deadline = time.monotonic() + 120
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline and not answer.get("tree_size"):
        try:
            with urllib.request.urlopen(  # our own https API
                "https://localhost:8443/v1/checkpoints/latest", context=context, timeout=10
            ) as response:
                answer = json.loads(response.read())
        except OSError:
            time.sleep(3)
    assert answer.get("tree_size", 0) > 0 and answer.get("signature")


def _drill(stack: Stack, tmp_path: Path, name: str, action: Any, restore: Any) -> None:
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
    counts = drain_until(stack, "NLA", "SUWI64_ARB", f"drill-{name}", tmp_path / f"{name}.out",
                         ours, 400)  # fmt: skip
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


def test_drill_a_broker_killed_mid_stream(stack: Stack, tmp_path: Path) -> None:
    broker = stack.container("kafka-2")
    _drill(
        stack, tmp_path, "broker",
        lambda: stack.docker("kill", broker),
        lambda: stack.docker("start", broker),
    )  # fmt: skip


def test_drill_a_gateway_killed_mid_stream(stack: Stack, tmp_path: Path) -> None:
    gateway = stack.container("gateway", 1)
    _drill(
        stack, tmp_path, "gateway",
        lambda: stack.docker("kill", gateway),
        lambda: stack.docker("start", gateway),
    )  # fmt: skip
