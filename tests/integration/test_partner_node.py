"""Partner nodes in front of the real exchange (TLS broker, ACLs, the real gateway).

RVIG's node publishes a frequent-mover signal over HTTP; the gateway
decides and delivers it to GM0363; GM0363's node hands it over on a long
poll and, on acknowledgement, writes the receipt and commits. Everything a
node promises is checked against the broker and the access log: the trace
the caller gave, idempotent retries, signals that come back unless
acknowledged (after a lease and after a restart), and mutual TLS.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import pytest

from sigex.exchange.access_record import AccessRecord, EventKind
from sigex.exchange.protocol import to_json_value
from sigex.exchange.topology import receipts_topic
from sigex.node.service import NodeSettings
from sigex.node.webhook import WebhookSettings
from tests.integration.conftest import REPO, SecureExchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, start_kit
from tests.integration.node_kit import RunningNode, caught_up, running_node, wait_ready
from tests.signal_records import frequent_mover

pytestmark = pytest.mark.integration
SIGNAL = "laa.frequent-mover"


@pytest.fixture(scope="module")
def kit(secure_exchange: SecureExchange) -> Iterator[ExchangeKit]:
    for kit in start_kit(secure_exchange):
        caught_up(kit)
        yield kit


@pytest.fixture(scope="module")
def rvig(kit: ExchangeKit) -> Iterator[RunningNode]:
    with running_node(kit, "RVIG") as node:
        wait_ready(node)
        yield node


@pytest.fixture(scope="module")
def gm0363(kit: ExchangeKit) -> Iterator[RunningNode]:
    settings = NodeSettings(rate=0, lease_seconds=3, group_name=f"test-{uuid.uuid4().hex[:6]}")
    with running_node(kit, "GM0363", settings=settings) as node:
        wait_ready(node)
        yield node


def mover(signal_id: str | None = None) -> dict[str, Any]:
    record = frequent_mover("GM0363", fresh_bsn(), EXCHANGE_TIME - timedelta(minutes=5))
    if signal_id:
        record["signal_id"] = signal_id
    value: dict[str, Any] = to_json_value(record)
    return value


def publish(node: RunningNode, records: list[dict[str, Any]], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{node.url}/v1/signals/{SIGNAL}",
        json={"purpose": "LAA_SIGNAAL", "records": records},
        headers=headers,
        timeout=60,
    )


def receive_until(
    node: RunningNode, signal_ids: set[str], timeout: float = 240.0
) -> list[dict[str, Any]]:
    """Long-poll ``node`` until every signal id came (others are acknowledged and dropped).

    A node in a new group starts at the earliest offset, so what earlier tests delivered to
    the party comes first: it is acknowledged a poll at a time (one call per signal took
    minutes on a loaded CI machine).
    """
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        missing = signal_ids - {d["fields"]["signal_id"] for d in got}
        if not missing:
            return got
        answer = httpx.get(f"{node.url}/v1/deliveries", params={"wait": 5, "max": 500}, timeout=30)
        assert answer.status_code == 200, answer.text
        others: list[str] = []
        wanted_now = False
        for delivery in answer.json()["deliveries"]:
            if delivery["fields"].get("signal_id") in signal_ids:
                got.append(delivery)
                wanted_now = True
            else:  # an earlier test's signal: out of the way
                others.append(delivery["message_id"])
        # not while a wanted one is lent: its (short) lease runs while the others are settled;
        # the others come back when their lease runs out, and a later poll settles them
        if others and not wanted_now:
            acknowledge(node, others)
    raise AssertionError(f"not delivered within {timeout} s: {missing}")


def acknowledge(node: RunningNode, message_ids: list[str]) -> dict[str, Any]:
    answer = httpx.post(
        f"{node.url}/v1/deliveries/ack", json={"message_ids": message_ids}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_signal_published_over_http_is_received_over_http_with_its_basis_and_trace(
    kit: ExchangeKit, rvig: RunningNode, gm0363: RunningNode
) -> None:
    record = mover()
    trace_id = uuid.uuid4().hex
    answer = publish(rvig, [record], traceparent=f"00-{trace_id}-{'1' * 16}-01")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["published"] == 1 and body["trace_id"] == trace_id
    message_id = body["results"][0]["message_id"]
    assert body["results"][0]["recipients"] == ["GM0363"]

    [delivery] = receive_until(gm0363, {record["signal_id"]})
    assert delivery["sender"] == "RVIG" and delivery["recipient"] == "GM0363"
    assert delivery["purpose"] == "LAA_SIGNAAL"
    assert delivery["legal_basis"] == "NL.WBRP.LAA"
    assert delivery["agreement_id"] == "LAA-FREQUENT-MOVER"
    assert delivery["trace_id"] == trace_id
    assert delivery["fields"]["bsn"] == record["bsn"]
    assert delivery["decision"]["outcome"] == "PERMIT"
    assert delivery["message_id"] == message_id

    assert acknowledge(gm0363, [message_id]) == {"acknowledged": [message_id], "unknown": []}
    receipts = kit.access_records(
        receipts_topic("GM0363"),
        lambda r: r.message_id == message_id and r.kind is EventKind.ACKNOWLEDGED,
    )
    assert receipts and all(r.trace_id == trace_id for r in receipts)
    # acknowledged once: not offered again
    again = httpx.get(f"{gm0363.url}/v1/deliveries", params={"wait": 4}, timeout=30).json()
    assert message_id not in {d["message_id"] for d in again["deliveries"]}


def test_an_unacknowledged_signal_comes_back_when_its_lease_runs_out(
    rvig: RunningNode, gm0363: RunningNode
) -> None:
    record = mover()
    assert publish(rvig, [record]).status_code == 200
    [first] = receive_until(gm0363, {record["signal_id"]})
    started = time.monotonic()
    [again] = receive_until(gm0363, {record["signal_id"]})
    assert again["message_id"] == first["message_id"]
    assert time.monotonic() - started >= 2.0  # not before the 3 s lease ran out
    acknowledge(gm0363, [first["message_id"]])


def test_a_retry_with_the_same_idempotency_key_publishes_nothing_twice(
    kit: ExchangeKit, rvig: RunningNode, gm0363: RunningNode
) -> None:
    records = [mover(), mover()]
    key = str(uuid.uuid4())
    first = publish(rvig, records, **{"Idempotency-Key": key})
    second = publish(rvig, records, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    got = receive_until(gm0363, {r["signal_id"] for r in records})
    acknowledge(gm0363, [d["message_id"] for d in got])
    time.sleep(3)
    extra = httpx.get(f"{gm0363.url}/v1/deliveries", params={"wait": 3}, timeout=30).json()
    assert not {d["fields"]["signal_id"] for d in extra["deliveries"]} & {
        r["signal_id"] for r in records
    }


def test_a_signal_not_acknowledged_before_the_node_stops_is_offered_by_the_next(
    kit: ExchangeKit, rvig: RunningNode
) -> None:
    group = f"test-{uuid.uuid4().hex[:6]}"
    settings = NodeSettings(rate=0, group_name=group)
    record = mover()
    with running_node(kit, "GM0363", settings=settings) as first:
        wait_ready(first)
        assert publish(rvig, [record]).status_code == 200
        [taken] = receive_until(first, {record["signal_id"]})
    with running_node(kit, "GM0363", settings=settings) as second:
        wait_ready(second)
        [offered] = receive_until(second, {record["signal_id"]})
        assert offered["message_id"] == taken["message_id"]
        acknowledge(second, [offered["message_id"]])


def test_a_policy_refusal_is_answered_per_record_and_not_delivered(
    rvig: RunningNode,
) -> None:
    lawful = mover()
    elsewhere = dict(mover(), municipality="GM9999")  # no such municipality in the federation
    answer = publish(rvig, [lawful, elsewhere])
    assert answer.status_code == 200, answer.text
    rows = {row["index"]: row for row in answer.json()["results"]}
    assert rows[0]["status"] == "published"
    assert rows[1]["status"] == "refused" and rows[1]["reason_codes"]


def test_beyond_loopback_only_clients_of_the_partys_ca_get_in(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    from sigex.identity.node_tls import issue_node_certificates

    certs = issue_node_certificates(tmp_path / "ours", "RVIG", clients=("case-system", "other"))
    foreign = issue_node_certificates(tmp_path / "theirs", "RVIG", clients=("case-system",))
    settings = NodeSettings(
        rate=0,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        client_ca=certs.ca,
    )
    grants = ("case-system=laa.frequent-mover",)
    with running_node(kit, "RVIG", settings=settings, grants=grants) as node:
        wait_ready(node)

        def client(pair: tuple[Path, Path] | None) -> httpx.Client:
            context = ssl.create_default_context(cafile=str(certs.ca))
            if pair is not None:
                context.load_cert_chain(str(pair[0]), str(pair[1]))
            return httpx.Client(verify=context)

        with client(certs.clients["case-system"]) as ours:
            assert ours.get(f"{node.url}/livez").status_code == 200
            assert publish_with(ours, node, [mover()]).status_code == 200
        with client(certs.clients["other"]) as other:  # our CA, but not allowed to publish
            refused = publish_with(other, node, [mover()])
            assert refused.status_code == 403
            assert "'other'" in refused.json()["detail"]
        for pair in (None, foreign.clients["case-system"]):
            with client(pair) as stranger, pytest.raises(httpx.TransportError):
                stranger.get(f"{node.url}/livez")


def publish_with(
    client: httpx.Client, node: RunningNode, records: list[dict[str, Any]]
) -> httpx.Response:
    return client.post(
        f"{node.url}/v1/signals/{SIGNAL}",
        json={"purpose": "LAA_SIGNAAL", "records": records},
        timeout=60,
    )


def test_a_partner_system_in_javascript_publishes_receives_and_acknowledges(
    kit: ExchangeKit, rvig: RunningNode, gm0363: RunningNode
) -> None:
    """Node.js's fetch, no sigex code: the whole round trip, checked in the access log."""
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the language-independence test (.ci/run)"
    record = mover()
    script = Path(__file__).with_name("partner_node_client.mjs")
    done = subprocess.run(
        [node, str(script), rvig.url, gm0363.url, json.dumps(record)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["received_message_id"] == seen["published_message_id"]
    assert seen["received_trace_id"] == seen["trace_id"]
    assert seen["received_bsn_matches"] is True
    assert seen["received_legal_basis"] == "NL.WBRP.LAA"
    assert seen["acknowledged"] == [seen["received_message_id"]]
    assert seen["answer_status"] == "published"
    assert seen["reply_message_id"] == seen["answer_message_id"]
    assert seen["reply_outcome"] == "ADDRESS_CORRECTED"
    assert seen["reply_acknowledged"] == [seen["reply_message_id"]]
    for party, message_id in (
        ("GM0363", seen["received_message_id"]),
        ("RVIG", seen["reply_message_id"]),
    ):
        receipts = kit.access_records(receipts_topic(party), acknowledgement_of(message_id))
        assert receipts, f"no acknowledgement of {party} in the access log"


def acknowledgement_of(message_id: str) -> Callable[[AccessRecord], bool]:
    """Matches the ACKNOWLEDGED receipt of ``message_id``."""
    return lambda r: r.message_id == message_id and r.kind is EventKind.ACKNOWLEDGED


def doc_blocks_marked_tested(document: Path) -> list[str]:
    """The shell blocks of ``document`` marked ``<!-- tested -->``, in order."""
    blocks: list[str] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "<!-- tested -->":
            assert lines[number + 1].startswith("```sh"), f"line {number + 2}: not a sh block"
            end = lines.index("```", number + 2)
            blocks.append("\n".join(lines[number + 2 : end]))
    return blocks


def test_the_curl_examples_in_the_docs_work(
    rvig: RunningNode, gm0363: RunningNode, tmp_path: Path
) -> None:
    """docs/partner-node.md's curl walk-through, run as written against the two nodes."""
    blocks = doc_blocks_marked_tested(REPO / "docs" / "partner-node.md")
    assert len(blocks) >= 6
    script = "set -euo pipefail\n" + "\n".join(blocks) + "\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={
            "PATH": os.environ["PATH"],
            "NODE_RVIG": rvig.url,
            "NODE_GM0363": gm0363.url,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert '"allowed":true' in done.stdout
    assert '"status":"published"' in done.stdout
    assert "idempotent-replayed: true" in done.stdout.lower()
    assert '"pointer":"/record/bsn"' in done.stdout
    assert '"acknowledged":["' in done.stdout


class _Hook(BaseHTTPRequestHandler):
    """The partner's endpoint: refuses its first push (500), then takes every push (204)."""

    pushes: ClassVar[list[tuple[int, list[dict[str, Any]]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status = 500 if not type(self).pushes else 204
        type(self).pushes.append((status, body["deliveries"]))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


def test_a_webhook_gets_each_signal_and_its_2xx_acknowledges_it(
    kit: ExchangeKit, rvig: RunningNode
) -> None:
    _Hook.pushes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = WebhookSettings(f"http://127.0.0.1:{server.server_address[1]}/signals", batch=50)
    settings = NodeSettings(rate=0, group_name=f"hook-{uuid.uuid4().hex[:6]}", webhook=hook)
    try:
        with running_node(kit, "GM0363", settings=settings) as node:
            wait_ready(node)
            record = mover()
            assert publish(rvig, [record]).status_code == 200
            deadline = time.monotonic() + 90
            taken: set[str] = set()
            while time.monotonic() < deadline and record["signal_id"] not in taken:
                time.sleep(0.5)
                taken = {
                    d["fields"]["signal_id"]
                    for status, ds in _Hook.pushes
                    if status == 204
                    for d in ds
                }
            assert record["signal_id"] in taken
            refused = {d["message_id"] for status, ds in _Hook.pushes if status == 500 for d in ds}
            later = {d["message_id"] for status, ds in _Hook.pushes if status == 204 for d in ds}
            assert refused and refused <= later, "what the endpoint refused came again"
            [delivery] = [
                d for s, ds in _Hook.pushes if s == 204 for d in ds
                if d["fields"]["signal_id"] == record["signal_id"]
            ]  # fmt: skip
            assert delivery["legal_basis"] == "NL.WBRP.LAA"
            receipts = kit.access_records(
                receipts_topic("GM0363"),
                lambda r: (
                    r.message_id == delivery["message_id"] and r.kind is EventKind.ACKNOWLEDGED
                ),
            )
            assert receipts, "the 2xx answer was not put on record as the acknowledgement"
            # acknowledged by the push: a poll of the same node does not get it again
            polled = httpx.get(f"{node.url}/v1/deliveries", params={"wait": 2}, timeout=30)
            assert delivery["message_id"] not in {
                d["message_id"] for d in polled.json()["deliveries"]
            }
    finally:
        server.shutdown()
