"""Partner nodes killed with SIGKILL: nothing is lost, nothing is delivered twice.

The nodes here are ``sigex node serve`` processes, as in operation, in front
of the real exchange (TLS broker, ACLs, the gateway on the system's clock).

- A recipient's node killed while a signal is lent out offers it again after
  the restart; once acknowledged, it is never offered again.
- A sender's node killed in the middle of a publish: the caller sends the same
  request again with the same Idempotency-Key, and every signal reaches its
  recipient exactly once (the gateway refuses what the first attempt sent).
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
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from sigex.clock import SystemClock
from sigex.exchange.protocol import to_json_value
from tests.conftest import free_port
from tests.integration.conftest import SecureExchange
from tests.integration.exchange_kit import ExchangeKit, fresh_bsn, start_kit
from tests.integration.node_kit import caught_up
from tests.signal_records import frequent_mover

pytestmark = pytest.mark.integration
SIGEX = str(Path(sys.executable).with_name("sigex"))
SIGNAL = "laa.frequent-mover"


@pytest.fixture(scope="module")
def kit(secure_exchange: SecureExchange) -> Iterator[ExchangeKit]:
    for kit in start_kit(secure_exchange, clock=SystemClock()):
        caught_up(kit)
        yield kit


@contextmanager
def node_process(
    kit: ExchangeKit, party: str, data: Path, group: str = "node"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``sigex node serve`` for ``party``; yields its address once ready; killed at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")} | {
        "SIGEX_STATE_DIR": str(kit.state_dir),
        "SIGEX_BOOTSTRAP": kit.exchange.bootstrap,
        "SIGEX_ENV": "test",
    }
    log = (data / f"{party}.log").open("ab")
    process = subprocess.Popen(
        [SIGEX, "node", "serve", "--as", party, "--listen", f"127.0.0.1:{port}", "--rate", "0",
         "--group", group, "--data-dir", str(data / party), "--lease-seconds", "60"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (data / f"{party}.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"node {party} not ready: {(data / f'{party}.log').read_text()}")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        log.close()


def movers(count: int) -> list[dict[str, Any]]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return [to_json_value(frequent_mover("GM0363", fresh_bsn(), at)) for _ in range(count)]


def take(url: str, wanted: set[str], seconds: float = 240) -> dict[str, str]:
    """signal_id -> message_id of ``wanted`` signals lent by the node.

    A new group starts at the earliest offset: what earlier tests delivered to the party comes
    first, and is acknowledged a poll at a time (one call each would take minutes in CI).
    """
    found: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and set(found) != wanted:
        answer = httpx.get(f"{url}/v1/deliveries", params={"max": 500, "wait": 3}, timeout=30)
        assert answer.status_code == 200, answer.text
        others: list[str] = []
        for delivery in answer.json()["deliveries"]:
            signal_id = delivery["fields"]["signal_id"]
            if signal_id in wanted:
                found[signal_id] = delivery["message_id"]
            else:
                others.append(delivery["message_id"])
        if others:
            ack(url, others)
    return found


def ack(url: str, message_ids: list[str]) -> None:
    answer = httpx.post(f"{url}/v1/deliveries/ack", json={"message_ids": message_ids}, timeout=60)
    assert answer.status_code == 200, answer.text


def test_a_recipient_node_killed_with_signals_lent_offers_them_again(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    group = f"crash-{uuid.uuid4().hex[:6]}"
    records = movers(3)
    wanted = {r["signal_id"] for r in records}
    with node_process(kit, "RVIG", tmp_path) as (sender, _):
        answer = httpx.post(
            f"{sender}/v1/signals/{SIGNAL}",
            json={"purpose": "LAA_SIGNAAL", "records": records},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["published"] == 3, answer.text
    with node_process(kit, "GM0363", tmp_path, group) as (first, process):
        lent = take(first, wanted)
        assert set(lent) == wanted
        process.send_signal(signal.SIGKILL)  # lent, not acknowledged
        process.wait(timeout=30)
    with node_process(kit, "GM0363", tmp_path, group) as (second, process):
        again = take(second, wanted)
        assert again == lent  # the same deliveries, offered again
        ack(second, list(again.values()))
        process.send_signal(signal.SIGKILL)  # acknowledged: committed before the answer
        process.wait(timeout=30)
    with node_process(kit, "GM0363", tmp_path, group) as (third, _):
        assert take(third, wanted, seconds=10) == {}


def test_a_sender_node_killed_mid_publish_delivers_each_signal_once_after_the_retry(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    records = movers(400)
    wanted = {r["signal_id"] for r in records}
    body = {"purpose": "LAA_SIGNAAL", "records": records}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    with node_process(kit, "RVIG", tmp_path) as (sender, process):
        # how long a publish of this size takes here, so that the kill lands inside one
        started = time.monotonic()
        warm = httpx.post(
            f"{sender}/v1/signals/{SIGNAL}",
            json={"purpose": "LAA_SIGNAAL", "records": movers(400)},
            timeout=120,
        )
        assert warm.status_code == 200, warm.text
        takes = time.monotonic() - started
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(
                    httpx.post(f"{sender}/v1/signals/{SIGNAL}", json=body, headers=key, timeout=120)
                )
            except httpx.TransportError as error:
                outcome.append(error)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(takes / 2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        caller.join(timeout=60)
        print(f"publish of 400 takes {takes:.2f} s; killed at half: {outcome}")
    with node_process(kit, "RVIG", tmp_path) as (sender, _):
        retried = httpx.post(f"{sender}/v1/signals/{SIGNAL}", json=body, headers=key, timeout=120)
        assert retried.status_code == 200, retried.text
        assert retried.json()["published"] + retried.json()["refused"] == 400
    # every signal reaches GM0363 exactly once, whatever the first attempt sent
    group = f"count-{uuid.uuid4().hex[:6]}"
    counts: Counter[str] = Counter()
    with node_process(kit, "GM0363", tmp_path, group) as (recipient, _):
        deadline = time.monotonic() + 120
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and (
            set(counts) != wanted or time.monotonic() - quiet_since < 8
        ):
            answer = httpx.get(
                f"{recipient}/v1/deliveries", params={"max": 500, "wait": 2}, timeout=30
            )
            deliveries = answer.json()["deliveries"]
            if deliveries:
                quiet_since = time.monotonic()
                counts.update(
                    d["fields"]["signal_id"]
                    for d in deliveries
                    if d["fields"]["signal_id"] in wanted
                )
                ack(recipient, [d["message_id"] for d in deliveries])
    assert set(counts) == wanted
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1][:5]
