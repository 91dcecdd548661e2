"""Benchmark: signals through the partner node against the Python library, side by side.

Run: ``.venv/bin/python bench/bench_node.py [--signals N] [--rate R] [--seconds S] [--quick]``.
Writes ``bench/results/node.json`` and ``bench/results/node.md``.

One run sets up its own federation and local TLS broker with ACLs (as
``bench_e2e.py`` does), starts one policy gateway process (``sigex gateway
run``), and then, on that one broker, moves RvIG's frequent-mover signals to
Amsterdam (GM0363) two ways:

- **library**: ``Publisher`` and ``Subscriber`` in the benchmark's process,
  as a Python partner system embeds them;
- **node**: ``sigex node serve`` processes for RVIG and GM0363, called over
  HTTP/1.1 on loopback by the benchmark's process with httpx (JSON bodies,
  a long poll, acknowledgements), as a partner in any language would call it.

Three measurements, each taken for both paths in the same run:

1. **publishing**, at the highest rate: N signals in requests (or calls) of
   100 records, until the broker acknowledged every one; rounds alternate
   between the paths and the median round counts;
2. **receiving**, at the highest rate: every signal delivered so far, drained
   by a fresh consumer group (the library's Subscriber with a handler, or the
   node's ``GET /v1/deliveries?max=500`` then ``POST /v1/deliveries/ack``);
3. **latency** at a paced rate (default 250 signals/s, one signal per call or
   request): from the moment a signal was due to the moment the receiving
   side had it in hand; the node's share is its p99 minus the library's.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
from bench_e2e import (
    RESULTS,
    SIGEX,
    Exchange,
    cpu_seconds,
    free_port,
    gateway_env,
    latency_summary,
    machine_notes,
    running_exchange,
    wait_for_group,
)

from sigex.consumers.subscriber import ReceivedSignal, Subscriber
from sigex.exchange.protocol import to_json_value
from sigex.identifiers import synthetic_bsn
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.schemas.catalogue import load_catalogue

SENDER = "RVIG"
RECIPIENT = "GM0363"
SIGNAL = "laa.frequent-mover"
PURPOSE = "LAA_SIGNAAL"
BATCH = 100
GATEWAY_GROUP = "sigex-gateway-bench"
#: a receiving run that gets nothing for this long has failed (rather than wait forever)
STALL_SECONDS = 60.0


def records(count: int, seed: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return [
        {
            "signal_id": str(uuid.uuid4()),
            "detected_at": now,
            "bsn": synthetic_bsn(10_000_000 + seed + index),
            "municipality": RECIPIENT,
            "postcode": "1011AB",
            "house_number": 12,
            "house_number_addition": None,
            "moves_in_period": 6,
            "period_start": now.date().replace(month=1, day=1),
            "period_end": now.date().replace(month=12, day=31),
            "profile": "LAA-VV-01",
        }
        for index in range(count)
    ]


@dataclass
class Nodes:
    sender: str
    recipient: str
    processes: list[Any]


class Bench:
    def __init__(self, exchange: Exchange, folder: Path) -> None:
        self.exchange = exchange
        self.folder = folder
        self.policy = load_policy()
        self.catalogue = load_catalogue()
        self.state = exchange.state_dir
        self.directory = load_directory(self.state)
        #: how long each send of the last paced run took (ms)
        self.send_ms: list[float] = []
        #: the last paced run's latencies split at the gateway's decision (ms)
        self.stages: dict[str, list[float]] = {}

    # -- the two paths ---------------------------------------------------------------------------

    def publisher(self) -> Publisher:
        return Publisher(
            identity=load_party(self.state, SENDER),
            directory=self.directory,
            policy=self.policy,
            catalogue=self.catalogue,
            connection=self.exchange.connection(SENDER),
            record_key=load_or_create_record_key(self.state, SENDER),
        )

    def subscriber(self, name: str) -> Subscriber:
        return Subscriber(
            identity=load_party(self.state, RECIPIENT),
            directory=self.directory,
            catalogue=self.catalogue,
            connection=self.exchange.connection(RECIPIENT),
            purposes=(PURPOSE,),
            policy=self.policy,
            signals=(SIGNAL,),
            name=name,
        )

    def start_node(self, party: str, group: str) -> tuple[str, Any]:
        port = free_port()
        env = gateway_env(self.exchange)
        process = self.exchange.spawn(
            [SIGEX, "node", "serve", "--as", party, "--listen", f"127.0.0.1:{port}",
             "--rate", "0", "--group", group, "--inbox-capacity", "2000",
             "--data-dir", str(self.folder / f"node-{party}-{group}")],
            self.folder / f"node-{party}.log",
            env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the node of {party} exited; see {self.folder}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url, process
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the node of {party} did not become ready")

    # -- 1. publishing -----------------------------------------------------------------------

    def publish_library(self, publisher: Publisher, batch: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        for start in range(0, len(batch), BATCH):
            result = publisher.publish(SIGNAL, PURPOSE, batch[start : start + BATCH])
            assert not result.refused, result.refused
        return time.perf_counter() - started

    def publish_node(self, client: httpx.Client, url: str, batch: list[dict[str, Any]]) -> float:
        bodies = [
            json.dumps({"purpose": PURPOSE, "records": to_json_value(batch[start : start + BATCH])})
            for start in range(0, len(batch), BATCH)
        ]
        started = time.perf_counter()
        for body in bodies:
            answer = client.post(
                f"{url}/v1/signals/{SIGNAL}",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200 and answer.json()["refused"] == 0, answer.text
        return time.perf_counter() - started

    # -- 2. receiving ------------------------------------------------------------------------

    def receive_library(self, total: int) -> float:
        got = 0

        def handler(_signal: ReceivedSignal) -> None:
            nonlocal got
            got += 1

        with self.subscriber(f"bench-lib-{uuid.uuid4().hex[:6]}") as subscriber:
            while not subscriber.assigned:
                subscriber.poll(handler, timeout_ms=200)
            before, started = got, time.perf_counter()
            progress = time.monotonic()
            while got < total:
                seen = got
                subscriber.poll(handler, timeout_ms=500)
                if got > seen:
                    progress = time.monotonic()
                elif time.monotonic() - progress > STALL_SECONDS:
                    raise RuntimeError(f"the library received {got} of {total}, then nothing")
            return (time.perf_counter() - started) * total / max(1, total - before)

    def receive_node(self, client: httpx.Client, url: str, total: int) -> float:
        got = 0
        started = time.perf_counter()
        progress = time.monotonic()
        while got < total:
            answer = client.get(f"{url}/v1/deliveries", params={"max": 500, "wait": 5})
            ids = [d["message_id"] for d in answer.json()["deliveries"]]
            if not ids and time.monotonic() - progress > STALL_SECONDS:
                raise RuntimeError(f"the node handed over {got} of {total}, then nothing")
            if ids:
                progress = time.monotonic()
                acked = client.post(f"{url}/v1/deliveries/ack", json={"message_ids": ids})
                got += len(acked.json()["acknowledged"])
        return time.perf_counter() - started

    # -- 3. latency at a paced rate ------------------------------------------------------------

    def paced(
        self,
        rate: float,
        seconds: float,
        send: Callable[[dict[str, Any]], None],
        receive: Callable[[Callable[[str, str], None], threading.Event], None],
    ) -> list[float]:
        """Latency (ms) of each signal sent at ``rate``; :attr:`stages` splits it at the
        gateway's decision (its ``decided_at``): before (sender and gateway) and after
        (delivery, and the receiving side)."""
        batch = records(int(rate * seconds), seed=int(time.time()))
        self.send_ms = []
        due: dict[str, float] = {}
        arrived: dict[str, float] = {}
        decided: dict[str, float] = {}
        lock = threading.Lock()
        stop = threading.Event()
        wanted = {str(record["signal_id"]) for record in batch}

        def note(signal_id: str, decided_at: str) -> None:
            if signal_id not in wanted:
                return  # an earlier run's signal, still waiting for this receiver
            with lock:
                if signal_id not in arrived:
                    arrived[signal_id] = time.time()
                    decided[signal_id] = datetime.fromisoformat(decided_at).timestamp()

        receiver = threading.Thread(target=receive, args=(note, stop), daemon=True)
        receiver.start()
        time.sleep(2)  # the receiver is polling
        start, wall = time.perf_counter(), time.time()
        for index, record in enumerate(batch):
            pause = start + index / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            due[str(record["signal_id"])] = wall + index / rate
            before = time.perf_counter()
            send(record)
            self.send_ms.append((time.perf_counter() - before) * 1000)
        deadline = time.monotonic() + 60
        while len(arrived) < len(batch) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        receiver.join(timeout=30)
        missing = len(batch) - len(arrived)
        if missing:
            raise RuntimeError(f"{missing} paced signals did not arrive")
        self.stages = {
            "to_decision": [(decided[k] - due[k]) * 1000 for k in due],
            "after_decision": [(arrived[k] - decided[k]) * 1000 for k in due],
        }
        return [(arrived[key] - due[key]) * 1000 for key in due]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"sigex-bench-node-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    with running_exchange() as exchange:
        bench = Bench(exchange, folder)
        exchange.spawn(
            [SIGEX, "gateway", "run", "--instance", "bench-1", "--no-metrics"],
            folder / "gateway.log",
            gateway_env(exchange) | {"SIGEX_GATEWAY_GROUP": GATEWAY_GROUP},
        )
        wait_for_group(exchange, GATEWAY_GROUP, 1)
        sender_url, sender_process = bench.start_node(SENDER, "bench")
        client = httpx.Client(timeout=60)
        publisher = bench.publisher()

        # warm both paths (connections, first metadata, the gateway's first batch)
        bench.publish_library(publisher, records(BATCH, seed=1))
        bench.publish_node(client, sender_url, records(BATCH, seed=2))

        rounds: dict[str, list[float]] = {"library": [], "node": []}
        sender_cpu_before = cpu_seconds(sender_process.pid)
        for number in range(args.rounds):
            batch = records(args.signals, seed=10_000 * (number + 1))
            rounds["library"].append(args.signals / bench.publish_library(publisher, batch))
            batch = records(args.signals, seed=10_000 * (number + 1) + 5_000)
            rounds["node"].append(args.signals / bench.publish_node(client, sender_url, batch))
        sender_cpu = cpu_seconds(sender_process.pid) - sender_cpu_before
        published = 2 * BATCH + 2 * args.rounds * args.signals

        # every signal delivered before the receiving runs start: a first group takes them all
        # (end offsets would not tell: the gateway's transaction markers take offsets too)
        delivered = published
        bench.receive_library(delivered)

        receiving: dict[str, float] = {}
        receiving["library"] = delivered / bench.receive_library(delivered)
        recipient_url, recipient_process = bench.start_node(
            RECIPIENT, f"bench-{uuid.uuid4().hex[:6]}"
        )
        recipient_cpu_before = cpu_seconds(recipient_process.pid)
        receiving["node"] = delivered / bench.receive_node(client, recipient_url, delivered)
        recipient_cpu = cpu_seconds(recipient_process.pid) - recipient_cpu_before

        # paced latency: the library path, then the node path (their groups are drained)
        library_group = f"bench-paced-{uuid.uuid4().hex[:6]}"
        with bench.subscriber(library_group) as warm:  # join, then start at the end
            while not warm.assigned:
                warm.poll(lambda _s: None, timeout_ms=200)
            warm.drain(lambda _s: None, idle_seconds=2)

        def library_receive(note: Callable[[str, str], None], stop: threading.Event) -> None:
            with bench.subscriber(library_group) as subscriber:
                while not stop.is_set():
                    subscriber.poll(
                        lambda s: note(str(s.fields["signal_id"]), s.decided_at.isoformat()),
                        timeout_ms=100,
                    )

        def node_receive(note: Callable[[str, str], None], stop: threading.Event) -> None:
            """Long-poll, and acknowledge from a second thread (as a partner system would:
            its next poll does not wait for the last acknowledgement)."""
            pending: queue.Queue[list[str] | None] = queue.Queue()

            def acknowledge() -> None:
                with httpx.Client(timeout=60) as acker:
                    while (ids := pending.get()) is not None:
                        acker.post(f"{recipient_url}/v1/deliveries/ack", json={"message_ids": ids})

            acker = threading.Thread(target=acknowledge, daemon=True)
            acker.start()
            with httpx.Client(timeout=60) as receiver:
                while not stop.is_set():
                    answer = receiver.get(
                        f"{recipient_url}/v1/deliveries", params={"max": 500, "wait": 1}
                    )
                    deliveries = answer.json()["deliveries"]
                    for delivery in deliveries:
                        note(delivery["fields"]["signal_id"], delivery["decision"]["decided_at"])
                    if deliveries:
                        pending.put([d["message_id"] for d in deliveries])
            pending.put(None)
            acker.join(timeout=60)

        with httpx.Client(timeout=60) as sender:

            def node_send(record: dict[str, Any]) -> None:
                answer = sender.post(
                    f"{sender_url}/v1/signals/{SIGNAL}",
                    json={"purpose": PURPOSE, "record": to_json_value(record)},
                )
                assert answer.status_code == 200, answer.text

            def library_send(record: dict[str, Any]) -> None:
                publisher.publish(SIGNAL, PURPOSE, [record])

            latency: dict[str, list[float]] = {"library": [], "node": []}
            send_ms: dict[str, list[float]] = {"library": [], "node": []}
            p99_rounds: dict[str, list[float]] = {"library": [], "node": []}
            stages: dict[str, dict[str, list[float]]] = {
                "library": {"to_decision": [], "after_decision": []},
                "node": {"to_decision": [], "after_decision": []},
            }
            for _ in range(args.paced_rounds):  # alternating, so that drift hits both
                for name, send, receive in (
                    ("library", library_send, library_receive),
                    ("node", node_send, node_receive),
                ):
                    values = bench.paced(args.rate, args.seconds, send, receive)
                    latency[name] += values
                    send_ms[name] += bench.send_ms
                    p99_rounds[name].append(latency_summary(values)["p99"])
                    for stage, stage_values in bench.stages.items():
                        stages[name][stage] += stage_values
            sending = {name: latency_summary(values) for name, values in send_ms.items()}
        publisher.close()
        client.close()
        exchange.stop_all()

    shutil.rmtree(folder, ignore_errors=True)  # the processes' logs, kept only after a failure
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_notes(),
        "settings": {
            "signals_per_round": args.signals,
            "rounds": args.rounds,
            "batch": BATCH,
            "rate": args.rate,
            "paced_seconds": args.seconds,
            "paced_rounds": args.paced_rounds,
        },
        "publish_per_second": {
            "library": median(rounds["library"]),
            "node": median(rounds["node"]),
            "rounds": rounds,
        },
        "publish_ratio": median(rounds["node"]) / median(rounds["library"]),
        "receive_per_second": receiving,
        "receive_ratio": receiving["node"] / receiving["library"],
        "node_cpu_ms_per_signal": {
            "sender_node_publishing": 1000 * sender_cpu / (args.rounds * args.signals),
            "recipient_node_receiving": 1000 * recipient_cpu / delivered,
        },
        "latency_ms": {name: latency_summary(values) for name, values in latency.items()},
        "send_call_ms": sending,
        "p99_ms_per_round": p99_rounds,
        "stages_ms": {
            name: {stage: latency_summary(values) for stage, values in split.items()}
            for name, split in stages.items()
        },
    }
    summary["p99_added_ms"] = median(p99_rounds["node"]) - median(p99_rounds["library"])
    return summary


def report(summary: dict[str, Any]) -> str:
    pub, rec, lat = (
        summary["publish_per_second"],
        summary["receive_per_second"],
        summary["latency_ms"],
    )
    settings = summary["settings"]
    machine = summary["machine"]
    cpu = summary["node_cpu_ms_per_signal"]
    aim_throughput = (
        "met" if min(summary["publish_ratio"], summary["receive_ratio"]) >= 0.5 else "not met"
    )
    aim_latency = "met" if summary["p99_added_ms"] < 20 else "not met"
    lines = [
        "# Partner node against the Python library",
        "",
        f"Measured {summary['when']} by `bench/bench_node.py` on {machine['cores']} cores "
        f"({machine['cpu']}), Python {machine['python']}, Kafka {machine['kafka']}, commit "
        f"{machine['commit']}. One TLS broker with ACLs, one gateway process; RVIG sends "
        f"{SIGNAL} to {RECIPIENT}. The library runs in the benchmark's process; the node path "
        "is two `sigex node serve` processes called over HTTP on loopback with httpx.",
        "",
        "| | library | node | node / library |",
        "|---|---|---|---|",
        f"| publishing, signals/s (median of {settings['rounds']} rounds of "
        f"{settings['signals_per_round']}, {settings['batch']} per call) | {pub['library']:,.0f} "
        f"| {pub['node']:,.0f} | **{summary['publish_ratio']:.2f}x** |",
        f"| receiving, signals/s (drain, ≤ 500 per poll) | {rec['library']:,.0f} | "
        f"{rec['node']:,.0f} | **{summary['receive_ratio']:.2f}x** |",
        "",
        f"Latency at {settings['rate']:g} signals/s offered, {settings['paced_rounds']} rounds of "
        f"{settings['paced_seconds']:g} s per path, "
        "one signal per call, from the moment it was due to the moment the receiving side had "
        "it (ms):",
        "",
        "| | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {v['p50']:.1f} | {v['p90']:.1f} | {v['p99']:.1f} | {v['max']:.1f} |"
            for name, v in lat.items()
        ),
        "",
        f"p99 per round ({settings['paced_rounds']} rounds, alternating): library "
        + ", ".join(f"{v:.0f}" for v in summary["p99_ms_per_round"]["library"])
        + "; node "
        + ", ".join(f"{v:.0f}" for v in summary["p99_ms_per_round"]["node"])
        + f". The node adds **{summary['p99_added_ms']:.1f} ms** to the median p99.",
        "",
        "The same latency split at the gateway's decision (its `decided_at`): until the "
        "decision (the sender's call, the ingress topic, the gateway's batch) and after it "
        "(the gateway's transaction, the delivery topic, the receiving side), ms:",
        "",
        "| | until decision p50 | p99 | after decision p50 | p99 |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {v['to_decision']['p50']:.1f} | {v['to_decision']['p99']:.1f} | "
            f"{v['after_decision']['p50']:.1f} | {v['after_decision']['p99']:.1f} |"
            for name, v in summary["stages_ms"].items()
        ),
        "",
        "How long one send took (the call or the HTTP request, ms):",
        "",
        "| | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {v['p50']:.1f} | {v['p90']:.1f} | {v['p99']:.1f} | {v['max']:.1f} |"
            for name, v in summary["send_call_ms"].items()
        ),
        "",
        "CPU of the node processes (ms per signal): RVIG's node publishing "
        f"{cpu['sender_node_publishing']:.3f}, GM0363's node receiving "
        f"{cpu['recipient_node_receiving']:.3f}.",
        "",
        f"Aims (issue 13): throughput ≥ 0.5x the library both ways: **{aim_throughput}**; "
        f"< 20 ms added to p99 at 250 signals/s: **{aim_latency}**.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=3000, help="Signals per publish round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=250.0, help="Paced signals per second.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of a paced run.")
    parser.add_argument("--paced-rounds", type=int, default=3, help="Paced runs per path.")
    parser.add_argument("--quick", action="store_true", help="Short run; records nothing.")
    args = parser.parse_args(argv)
    if args.quick:
        args.signals, args.rounds, args.seconds, args.paced_rounds = 500, 1, 4.0, 1
    summary = run(args)
    text = report(summary)
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "node.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (RESULTS / "node.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
