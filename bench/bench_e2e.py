"""Benchmark: the whole exchange end to end against plain kafka-python, side by side in one run.

Run: ``.venv/bin/python bench/bench_e2e.py [--signals N] [--rate R] [--quick] [--profile]``.
Writes ``bench/results/e2e.json``, ``bench/results/e2e.md`` and ``bench/results/e2e.png``.

One run sets up its own federation (in a temporary folder outside the
repository) and its own local Kafka broker with mutual TLS and ACLs on free
ports, provisions it from the agreements, and tears everything down at the end,
also after an error or Ctrl-C. Then, on that one broker:

- **sigex**: UWV publishes ``payroll.bsn-mismatch`` signals (purpose
  BRP_TERUGMELDING, municipality alternating) with the Publisher; the policy
  gateway (``sigex gateway run``, one or two processes in one group) decides,
  minimises, re-seals, audits and delivers them; one Subscriber per
  municipality hands them to a handler;
- **baseline**: plain kafka-python moves the same records, Avro-encoded whole
  with fastavro, producer -> topic -> a transactional consume-produce relay
  (read_committed, offsets in the transaction, routing by municipality, no
  policy, no cryptography) -> one topic per municipality -> consumers, with the
  same client settings, certificates and partition counts.

Publisher, gateway or relay, and each municipality's consumer are separate processes (see
``bench/e2e_roles.py``), so each one's peak RSS and CPU time is read from
``/proc``. A maximum-throughput run sends the signals in batches of 500 back to
back; a paced run offers a fixed rate and measures latency from the moment a
signal was due to the moment the recipient's handler got it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import e2e_broker
import e2e_librdkafka
import e2e_report
from e2e_roles import (
    BASELINE_CONSUMER_NAME,
    BASELINE_IN,
    BASELINE_RELAY_GROUP,
    RELAY,
    SENDER,
    SIGNAL,
    SUBSCRIBER_NAME,
    RoleSpec,
    baseline_out_topic,
)
from kafka import TopicPartition
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    NewTopic,
    OffsetSpec,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError

from sigex.broker import local
from sigex.broker.jars import kafka_version
from sigex.broker.provision import provision
from sigex.clock import SystemClock
from sigex.exchange.topology import (
    ProvisioningDefaults,
    compile_topology,
    delivery_topic,
    subscriber_group_prefix,
)
from sigex.exchange.topology import principal as party_principal
from sigex.identity import init_federation, read_parties
from sigex.policies.compiler import load_policy
from sigex.roles import Role
from sigex.transport import KafkaConnection

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ROLES = Path(__file__).resolve().parent / "e2e_roles.py"
PYTHON = sys.executable
SIGEX = str(Path(sys.executable).parent / "sigex")
MUNICIPALITIES = ("GM0363", "GM0599", "GM0518")
PARTITIONS = 4
GATEWAY_GROUP = "sigex-gateway-bench"
WARMUP = 300
MAX_BATCH = 500
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Interrupted(Exception):
    """SIGTERM to the benchmark: unwind so that every process and the broker are stopped."""


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted


# ------------------------------------------------------------------ /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mib(pid: int) -> float:
    """VmHWM (the peak resident set) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ------------------------------------------------------------------ the exchange


@dataclass
class Exchange:
    state_dir: Path
    bootstrap: str
    broker: local.BrokerSettings
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def connection(self, party: str) -> KafkaConnection:
        return KafkaConnection.for_party(self.bootstrap, self.state_dir, party)

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**self.connection(Role.ADMIN).options())

    @property
    def broker_pid(self) -> int | None:
        try:
            return int(self.broker.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def spawn(self, argv: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            process = subprocess.Popen(  # the benchmark's own commands
                list(argv), env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def broker_usage(self) -> dict[str, dict[str, int]]:
        admin = self.admin()
        try:
            return e2e_broker.snapshot(admin, self.broker.data_dir)
        finally:
            admin.close()

    def stop_all(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.processes.clear()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _acl(principal: str, resource: ResourceType, name: str, operation: ACLOperation) -> ACL:
    return ACL(
        principal=party_principal(principal),  # a fresh federation: key generation 1
        host="*",
        operation=operation,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(resource, name, ACLResourcePatternType.LITERAL),
    )


def baseline_acls() -> list[ACL]:
    """The baseline's own topics, with the same principals the sigex path uses."""
    topic = ResourceType.TOPIC
    acls = [
        _acl(SENDER, topic, BASELINE_IN, ACLOperation.WRITE),
        _acl(SENDER, topic, BASELINE_IN, ACLOperation.DESCRIBE),
        _acl(RELAY, topic, BASELINE_IN, ACLOperation.READ),
        _acl(RELAY, topic, BASELINE_IN, ACLOperation.DESCRIBE),
    ]
    for party in MUNICIPALITIES:
        out = baseline_out_topic(party)
        acls += [
            _acl(RELAY, topic, out, ACLOperation.WRITE),
            _acl(RELAY, topic, out, ACLOperation.DESCRIBE),
            _acl(party, topic, out, ACLOperation.READ),
            _acl(party, topic, out, ACLOperation.DESCRIBE),
        ]
    return acls


@contextmanager
def running_exchange() -> Iterator[Exchange]:
    """Federation + TLS broker with ACLs + provisioning; everything removed afterwards."""
    state = Path(tempfile.mkdtemp(prefix="sigex-bench-e2e-"))
    settings: local.BrokerSettings | None = None
    exchange: Exchange | None = None
    try:
        init_federation(state, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
        federation = state / "federation"
        settings = local.BrokerSettings(
            home=state / "broker",
            port=free_port(),
            controller_port=free_port(),
            quick_start=False,  # the JVM's full compiler, as a broker in operation runs
            tls=local.TlsSettings(
                keystore_pem=federation / "broker" / "keystore.pem",
                truststore_pem=federation / "broker" / "truststore.pem",
            ),
        )
        local.start(settings)
        exchange = Exchange(state, settings.bootstrap, settings)
        admin = exchange.admin()
        try:
            provision(
                admin,
                compile_topology(
                    load_policy(),
                    ProvisioningDefaults(partitions=PARTITIONS),
                    at=datetime.now(UTC),
                ),
            )
            names = [BASELINE_IN, *(baseline_out_topic(m) for m in MUNICIPALITIES)]
            admin.create_topics(
                [NewTopic(name, PARTITIONS, 1) for name in names], wait_for_metadata=True
            )
            admin.create_acls(baseline_acls())
            time.sleep(2)  # ACL changes reach the authorizer asynchronously
        finally:
            admin.close()
        yield exchange
    finally:
        if exchange is not None:
            exchange.stop_all()
        if settings is not None:
            local.stop(settings)
        shutil.rmtree(state, ignore_errors=True)


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True, slots=True)
class Scenario:
    side: str  # "sigex", "baseline" (kafka-python) or "librdkafka" (the reference row)
    mode: str  # "max", "paced" (at --rate) or "paced-low" (at --low-rate)
    workers: int  # gateway or relay processes
    count: int
    rate: float | None = None
    profile: bool = False

    @property
    def name(self) -> str:
        suffix = "-profiled" if self.profile else ""
        return f"{self.side}-{self.mode}-{self.workers}w{suffix}"


def role_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}


def gateway_env(exchange: Exchange) -> dict[str, str]:
    return role_env() | {
        "SIGEX_STATE_DIR": str(exchange.state_dir),
        "SIGEX_BOOTSTRAP": exchange.bootstrap,
        "SIGEX_GATEWAY_GROUP": GATEWAY_GROUP,
        "SIGEX_LOG_LEVEL": "WARNING",
    }


def wait_for_group(exchange: Exchange, group: str, members: int, timeout: float = 90.0) -> None:
    """Until ``group`` is stable with ``members`` members (so no rebalance during the run)."""
    admin = exchange.admin()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = admin.describe_groups([group]).get(group, {})
            except KafkaError:  # the coordinator is still being elected
                time.sleep(0.5)
                continue
            state = str(info.get("group_state", info.get("state", "")))
            if state.lower().endswith("stable") and len(info.get("members", ())) == members:
                return
            time.sleep(0.5)
    finally:
        admin.close()
    raise RuntimeError(f"group {group} did not become stable with {members} members")


def wait_until(predicate: Any, timeout: float, what: str, watched: Sequence[Any]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for process in watched:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process exited early ({process.args[:3]})")
        time.sleep(0.05)
    raise RuntimeError(f"{what}: timed out after {timeout:.0f}s")


def read_progress(folder: Path) -> tuple[int, int]:
    """(warm-up, measured) signals of this run the consumers have handed to their handlers."""
    warm = measured = 0
    for path in folder.glob("consumer-*.progress"):
        try:
            first, second, _failed_commits = path.read_text().split()
        except (OSError, ValueError):
            continue
        warm += int(first)
        measured += int(second)
    return warm, measured


def party_progress(folder: Path, party: str) -> tuple[int, int, int]:
    """(warm-up signals, measured signals, failed commits) of one consumer so far."""
    try:
        first, second, third = (folder / f"consumer-{party}.progress").read_text().split()
        return int(first), int(second), int(third)
    except (OSError, ValueError):
        return 0, 0, 0


def warm_up(
    folder: Path,
    processes: dict[str, subprocess.Popen[bytes]],
    start_consumer: Callable[[str], None],
    name: str,
    timeout: float = 180.0,
    patience: float = 30.0,
    max_restarts: int = 6,
) -> int:
    """Wait until every warm-up signal reached its consumer; returns consumer restarts.

    Now and then a kafka-python 3.0.12 consumer joins its group but never starts
    fetching, or stays outside its group after the second join so that every
    commit fails (see the report). A consumer still short of its warm-up signals
    ``patience`` seconds after they were all published is restarted, and so is
    one whose commits already fail in the warm-up (at most ``max_restarts`` in
    all); a failure after the warm-up stays in the measurement.
    """
    expected = {
        party: sum(1 for i in range(WARMUP) if i % len(MUNICIPALITIES) == k)
        for k, party in enumerate(MUNICIPALITIES)
    }
    restarts = 0
    deadline = time.monotonic() + timeout
    published_at: float | None = None
    while time.monotonic() < deadline:
        if published_at is None and (folder / "publisher.warm").exists():
            published_at = time.monotonic()
        short = [p for p in MUNICIPALITIES if party_progress(folder, p)[0] < expected[p]]
        failing = [p for p in MUNICIPALITIES if party_progress(folder, p)[2] > 0]
        if failing and restarts < max_restarts:
            for party in failing:
                stop_process(processes[f"consumer-{party}"])
                (folder / f"consumer-{party}.progress").unlink(missing_ok=True)
                start_consumer(party)
                restarts += 1
            continue
        if published_at is not None and not short:
            return restarts
        for process_name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} warm-up: {process_name} exited early")
        if published_at is not None and time.monotonic() - published_at > patience:
            for party in short:
                stop_process(processes[f"consumer-{party}"])
                start_consumer(party)
                restarts += 1
            published_at = time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"{name} warm-up: timed out after {timeout:.0f}s")


def reset_consumer_groups(exchange: Exchange, side: str) -> None:
    """Start every consumer group of ``side`` at the end of its topic.

    A run's consumers must see only that run's signals, even when a previous
    run's consumer could not commit everything it handled (see the report).
    """
    admin = exchange.admin()
    try:
        for party in MUNICIPALITIES:
            if side == "sigex":
                group = f"{subscriber_group_prefix(party)}{SUBSCRIBER_NAME}"
                topic = delivery_topic(SIGNAL, party)
            else:
                name = (
                    e2e_librdkafka.CONSUMER_NAME if side == "librdkafka" else BASELINE_CONSUMER_NAME
                )
                group = f"{subscriber_group_prefix(party)}{name}"
                topic = baseline_out_topic(party)
            specs = {TopicPartition(topic, p): OffsetSpec.LATEST for p in range(PARTITIONS)}
            admin.reset_group_offsets(group, specs)
    finally:
        admin.close()


def log_tails(folder: Path, lines: int = 12) -> str:
    parts = []
    for log in sorted(folder.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"  --- {log.name}\n" + "\n".join(f"    {line}" for line in text))
    return "\n".join(parts)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else float("nan"),
    }


def run_scenario(
    exchange: Exchange, scenario: Scenario, work: Path, seed: int, tag: int
) -> dict[str, Any]:
    folder = work / scenario.name
    folder.mkdir(parents=True)
    common = RoleSpec(
        role="",
        state_dir=str(exchange.state_dir),
        bootstrap=exchange.bootstrap,
        folder=str(folder),
        municipalities=MUNICIPALITIES,
        profile=scenario.profile,
        tag=tag,
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for number in range(1, scenario.workers + 1):
            log = folder / f"worker-{number}.log"
            if scenario.side == "sigex":
                command = [SIGEX, "gateway", "run", "--instance", f"bench-{number}", "--no-metrics"]
                if scenario.profile:
                    profile = folder / f"gateway-{number}.prof"
                    command = [PYTHON, "-m", "cProfile", "-o", str(profile), *command]
                processes[f"gateway-{number}"] = exchange.spawn(command, log, gateway_env(exchange))
            else:
                spec = replace(
                    common, role=f"{scenario.side}-relay", instance=str(number), profile=False
                )
                processes[f"relay-{number}"] = exchange.spawn(
                    [PYTHON, str(ROLES), spec.to_json()], log, role_env()
                )
        group = {"sigex": GATEWAY_GROUP, "librdkafka": e2e_librdkafka.RELAY_GROUP}.get(
            scenario.side, BASELINE_RELAY_GROUP
        )
        wait_for_group(exchange, group, scenario.workers)
        reset_consumer_groups(exchange, scenario.side)

        def start_consumer(party: str) -> None:
            consumer = replace(
                common, role=f"{scenario.side}-consumer", instance=party, municipalities=(party,)
            )
            processes[f"consumer-{party}"] = exchange.spawn(
                [PYTHON, str(ROLES), consumer.to_json()],
                folder / f"consumer-{party}.log",
                role_env(),
            )

        for party in MUNICIPALITIES:
            start_consumer(party)
        publisher = replace(
            common,
            role=f"{scenario.side}-publisher",
            warmup=WARMUP,
            count=scenario.count,
            rate=scenario.rate,
            batch=MAX_BATCH,
            seed=seed,
            tag=tag,
        )
        processes["publisher"] = exchange.spawn(
            [PYTHON, str(ROLES), publisher.to_json()], folder / "publisher.log", role_env()
        )
        restarts = warm_up(folder, processes, start_consumer, scenario.name)
        watched = list(processes.values())
        time.sleep(1.0)  # let the warm-up's receipts and commits settle
        pids = {name: p.pid for name, p in processes.items()}
        broker_pid = exchange.broker_pid
        if broker_pid is not None:
            pids["broker"] = broker_pid
        usage_before = exchange.broker_usage()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        (folder / "go").touch()
        timeout = 60 + scenario.count / 100
        try:
            wait_until(
                lambda: (
                    (folder / "publisher.json").exists()
                    and read_progress(folder)[1] >= scenario.count
                ),
                timeout,
                f"{scenario.name} run",
                watched,
            )
            complete = True
        except RuntimeError as problem:
            print(f"  ! {problem}", flush=True)
            complete = False
        elapsed = time.monotonic() - started
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        time.sleep(1.0)  # the last receipts and commits of the run reach the broker
        written = e2e_broker.difference(usage_before, exchange.broker_usage())
        rss = {name: peak_rss_mib(p.pid) for name, p in processes.items()}
        codes = {}
        for name in ("publisher", *sorted(processes.keys() - {"publisher"}, reverse=True)):
            codes[name] = stop_process(processes[name])
    finally:
        for process in processes.values():
            stop_process(process)
        for process in processes.values():
            if process in exchange.processes:
                exchange.processes.remove(process)
    result = summarise(scenario, folder, cpu, rss, codes, complete, elapsed)
    result["consumer_restarts_in_warm_up"] = restarts
    result["broker_written"] = written
    return result


def summarise(
    scenario: Scenario,
    folder: Path,
    cpu: dict[str, float],
    rss: dict[str, float],
    codes: dict[str, int],
    complete: bool,
    elapsed: float,
) -> dict[str, Any]:
    sent_rows = json.loads((folder / "publisher.json").read_text())["sent"]
    received: list[list[Any]] = []
    failures: list[str] = []
    recovered: list[str] = []
    for path in sorted(folder.glob("consumer-*.json")):
        consumed = json.loads(path.read_text())
        received += consumed["received"]
        failures += consumed["failures"]
        recovered += consumed.get("recovered", [])
    received.sort(key=lambda row: float(row[1]))
    due = {row[0]: row[1] for row in sent_rows}
    called = {row[0]: row[2] for row in sent_rows}
    arrivals: dict[str, float] = {}
    stamps: dict[str, tuple[float, float]] = {}
    duplicates = 0
    for row in received:
        signal_id, at = row[0], row[1]
        if signal_id in due:
            if signal_id in arrivals:
                duplicates += 1
                continue
            arrivals[signal_id] = at
            if len(row) == 4:
                stamps[signal_id] = (row[2], row[3])
    missing = len(due) - len(arrivals)
    first = min(called.values())
    last = max(arrivals.values()) if arrivals else float("nan")
    from_due = [(arrivals[s] - due[s]) * 1000 for s in arrivals]
    from_call = [(arrivals[s] - called[s]) * 1000 for s in arrivals]
    publish_span = max(called.values()) - first
    result: dict[str, Any] = {
        "name": scenario.name,
        "side": scenario.side,
        "mode": scenario.mode,
        "workers": scenario.workers,
        "signals": scenario.count,
        "offered_rate": scenario.rate,
        "achieved_publish_rate": round(len(called) / publish_span, 1) if publish_span else None,
        "complete": complete and missing == 0,
        "missing": missing,
        "duplicates": duplicates,
        "consumer_failures": failures,
        "consumer_commit_failures": recovered,
        "exit_codes": codes,
        "seconds": round(last - first, 3),
        "throughput": round(len(arrivals) / (last - first), 1) if arrivals else 0.0,
        "latency_ms_from_due": latency_summary(from_due),
        "latency_ms_from_publish_call": latency_summary(from_call),
        "latency_cdf_ms": [percentile(sorted(from_due), q / 100) for q in range(101)],
        "stages_ms": stage_summary(due, arrivals, stamps),
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_share_of_two_cores": {
            k: round(v / (2 * elapsed), 3) for k, v in cpu.items() if elapsed > 0
        },
        "peak_rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "window_seconds": round(elapsed, 2),
    }
    return result


def stage_summary(
    due: dict[str, float], arrivals: dict[str, float], stamps: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    """Latency split at the sender's sealing time and the gateway's decision time (sigex)."""
    if not stamps:
        return {}
    stages: dict[str, list[float]] = {
        "due -> sealed by the Publisher": [],
        "sealed -> decided by the gateway": [],
        "decided -> recipient's handler": [],
    }
    names = list(stages)
    for signal_id, (sealed, decided) in stamps.items():
        stages[names[0]].append((sealed - due[signal_id]) * 1000)
        stages[names[1]].append((decided - sealed) * 1000)
        stages[names[2]].append((arrivals[signal_id] - decided) * 1000)
    return {name: latency_summary(values) for name, values in stages.items()}


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    count = args.signals
    paced = round(args.rate * args.paced_seconds)
    plan = [
        Scenario("baseline", "max", 1, count),
        # the reference row: the baseline's pipeline on librdkafka (confluent-kafka)
        Scenario("librdkafka", "max", 1, count),
        Scenario("sigex", "max", 1, count),
        Scenario("sigex", "max", 2, count),
        Scenario("baseline", "max", 2, count),
        Scenario("baseline", "paced", 1, paced, rate=args.rate),
        Scenario("sigex", "paced", 1, paced, rate=args.rate),
    ]
    if args.low_rate > 0:
        low = round(args.low_rate * args.paced_seconds)
        plan += [
            Scenario("baseline", "paced-low", 1, low, rate=args.low_rate),
            Scenario("sigex", "paced-low", 1, low, rate=args.low_rate),
        ]
    if args.profile:
        plan.append(Scenario("sigex", "max", 1, min(count, 5_000), profile=True))
    if args.only:
        plan = [s for s in plan if any(s.name.startswith(prefix) for prefix in args.only)]
    return plan


def machine_notes() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "commit": commit or "unknown",
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "kafka": kafka_version(),
        "platform": platform.platform(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=None, help="signals per max-throughput run")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered load of the paced run")
    parser.add_argument(
        "--low-rate",
        type=float,
        default=250.0,
        help="a second paced run at this rate (0: none), to see latency below saturation",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild e2e.md and e2e.png from the recorded e2e.json, without measuring",
    )
    parser.add_argument("--paced-seconds", type=float, default=None, help="length of a paced run")
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    parser.add_argument("--profile", action="store_true", help="add a cProfile'd sigex run")
    parser.add_argument(
        "--only", action="append", help="run only scenarios whose name starts with this"
    )
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    parser.add_argument(
        "--as-before",
        action="store_true",
        help="write the runs to e2e.before.json only: the reference the report compares with",
    )
    args = parser.parse_args(argv)
    args.warmup = WARMUP
    if args.signals is None:
        args.signals = 2_000 if args.quick else 10_000
    if args.paced_seconds is None:
        args.paced_seconds = 5.0 if args.quick else 15.0
    if args.report_only:
        e2e_report.rewrite(RESULTS)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    notes = machine_notes()
    started = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="sigex-bench-e2e-work-"))
    try:
        print("starting the federation and a TLS broker with ACLs ...", flush=True)
        with running_exchange() as exchange:
            for number, scenario in enumerate(scenarios(args)):
                print(f"- {scenario.name}: {scenario.count} signals", flush=True)
                seed = (uuid.uuid4().int % 10**6) * 100 + number
                try:
                    result = run_scenario(exchange, scenario, work, seed, tag=number + 1)
                except (RuntimeError, OSError, ValueError) as failure:
                    print(f"  ! {scenario.name} failed: {failure}", flush=True)
                    print(log_tails(work / scenario.name), flush=True)
                    failures.append(f"{scenario.name}: {failure}")
                    continue
                print(e2e_report.one_line(result), flush=True)
                if scenario.profile:
                    profiles = e2e_report.profile_summaries(work / scenario.name)
                else:
                    results.append(result)
    finally:
        if not args.no_write and not results and profiles and (RESULTS / "e2e.json").exists():
            e2e_report.replace_profiles(RESULTS, profiles)
            print(f"replaced the profiles in {RESULTS / 'e2e.md'}", flush=True)
        if not args.no_write and results:
            settings = {
                key: getattr(args, key)
                for key in ("signals", "rate", "low_rate", "paced_seconds", "warmup", "quick")
            }
            settings |= {"partitions": PARTITIONS, "publish_batch": MAX_BATCH}
            report = e2e_report.build(results, notes, started, settings, profiles)
            report["failed_runs"] = failures
            if args.as_before:
                e2e_report.write_before(report, RESULTS)
                print(f"wrote {RESULTS / 'e2e.before.json'}", flush=True)
            else:
                e2e_report.write(report, RESULTS)
                print(f"wrote {RESULTS / 'e2e.md'}, e2e.json and e2e.png", flush=True)
        if args.keep:
            print(f"kept the run's logs in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: every process, the broker and the temporary folders are gone")
        sys.exit(130)
