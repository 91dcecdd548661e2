"""The processes of the end-to-end benchmark: publishers, a relay and consumers, both sides.

Each role runs as its own process (``python bench/e2e_roles.py '<json spec>'``),
started by ``bench/bench_e2e.py``, so that the peak RSS and CPU time of each
can be read from ``/proc``. The roles talk to the orchestrator through files
in the scenario folder:

- a publisher sends the warm-up signals, writes ``publisher.warm``, waits for
  ``go``, sends the measured signals, writes ``publisher.json`` (signal id ->
  due time and publish-call time, wall clock) and waits to be stopped;
- a consumer (one process per municipality) rewrites ``consumer-<PARTY>.progress``
  (signals handed to the handler so far) every 100 ms and on SIGTERM writes
  ``consumer-<PARTY>.json`` (signal id -> wall-clock time its handler was
  called; on the sigex side also the sender's sealing time and the gateway's
  decision time from the delivered envelope, both in milliseconds, which split
  the latency into stages);
- the baseline relay (plain consume-transform-produce) runs until SIGTERM.

Publisher and consumer are separate processes on the same machine, so the
latency of a signal is the consumer's ``time.time()`` at the handler minus
the publisher's ``time.time()`` at the moment the signal was due (paced run)
or its publish call began (maximum-throughput run): one clock, two processes.
"""

from __future__ import annotations

import cProfile
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import e2e_librdkafka
import fastavro
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    ProducerFencedError,
    RebalanceInProgressError,
)

from sigex.consumers.subscriber import ReceivedSignal, Subscriber
from sigex.identifiers import synthetic_bsn, synthetic_loonheffingennummer
from sigex.identity import load_directory, load_party
from sigex.logs import configure as configure_logs
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.schemas.catalogue import load_catalogue
from sigex.transport import KafkaConnection

SIGNAL = "payroll.bsn-mismatch"
PURPOSE = "BRP_TERUGMELDING"
SENDER = "UWV"
RELAY = "GATEWAY"  # the baseline relay authenticates with the gateway's certificate
BASELINE_IN = "bench.e2e.in.UWV"
BASELINE_OUT_PREFIX = "bench.e2e.out."
BASELINE_RELAY_GROUP = "sigex-gateway-bench-relay"  # inside the gateway's group ACL prefix
BASELINE_RELAY_TRANSACTIONAL = "sigex-gateway-bench-relay"
SUBSCRIBER_NAME = "bench-e2e"
BASELINE_CONSUMER_NAME = "bench-e2e-baseline"

#: the client settings both sides use (the Publisher's and the GatewayRunner's)
PRODUCER_SETTINGS: dict[str, Any] = {
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "max_in_flight_requests_per_connection": 5,
}
RELAY_PRODUCER_SETTINGS: dict[str, Any] = {
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "transaction_timeout_ms": 20_000,
}
MAX_POLL_RECORDS = 500


def baseline_out_topic(municipality: str) -> str:
    return f"{BASELINE_OUT_PREFIX}{municipality}"


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """What one role process does; passed as JSON on the command line."""

    role: str
    state_dir: str
    bootstrap: str
    folder: str
    municipalities: tuple[str, ...]
    warmup: int = 0
    count: int = 0
    rate: float | None = None
    batch: int = 500
    seed: int = 0
    tag: int = 0
    instance: str = "1"
    profile: bool = False

    @classmethod
    def from_json(cls, text: str) -> RoleSpec:
        raw = json.loads(text)
        raw["municipalities"] = tuple(raw["municipalities"])
        return cls(**raw)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def connection(self, party: str) -> KafkaConnection:
        return KafkaConnection.for_party(self.bootstrap, Path(self.state_dir), party)


# ------------------------------------------------------------------ records


def make_bsn(seed: int) -> str:
    """A BSN that passes the elfproef, derived from ``seed`` (synthetic test data)."""
    return synthetic_bsn(seed)


def make_loonheffingennummer(seed: int) -> str:
    return synthetic_loonheffingennummer(seed)


WARMUP_PHASE = 0
MEASURED_PHASE = 1


def tagged_signal_id(tag: int, phase: int) -> str:
    """A random UUID whose top 32 bits are the run's tag and next bit the phase.

    A consumer counts only the signals of its own run and phase, so signals a
    previous run left uncommitted (and that therefore come again) are not
    mistaken for this run's.
    """
    rest = uuid.uuid4().int & ((1 << 95) - 1)
    return str(uuid.UUID(int=(tag << 96) | (phase << 95) | rest, version=4))


def signal_tag(signal_id: str) -> tuple[int, int]:
    """(tag, phase) of a signal id made by :func:`tagged_signal_id`."""
    value = uuid.UUID(signal_id).int
    return value >> 96, (value >> 95) & 1


def mismatch_records(
    count: int, seed: int, municipalities: Sequence[str], tag: int, phase: int
) -> list[dict[str, object]]:
    """``count`` payroll mismatches, municipality alternating, each with a fresh signal id."""
    now = datetime.now(UTC)
    employer = make_loonheffingennummer(123456780)
    return [
        {
            "signal_id": tagged_signal_id(tag, phase),
            "detected_at": now,
            "bsn": make_bsn(seed + 13 * index),
            "kind": "BSN_UNKNOWN_IN_BRP",
            "employer_loonheffingennummer": employer,
            "employer_kvk": "12345678",
            "payroll_period": date(now.year, now.month, 1),
            "municipality": municipalities[index % len(municipalities)],
            "family_name": None,
            "birth_date": None,
        }
        for index in range(count)
    ]


def read_record(value: bytes, schema: Any) -> dict[str, Any]:
    """One whole record, as the baseline encodes it (fastavro, schemaless)."""
    record = fastavro.schemaless_reader(io.BytesIO(value), schema)
    if not isinstance(record, dict):
        raise TypeError("not an Avro record")
    return record


# ------------------------------------------------------------------ stopping


class StopFlag:
    """Set by SIGTERM or SIGINT; roles finish what they hold and write their results."""

    def __init__(self) -> None:
        self.event = threading.Event()
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, _signum: int, _frame: FrameType | None) -> None:
        self.event.set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


def write_json(path: Path, content: object) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content))
    partial.replace(path)


# ------------------------------------------------------------------ publishers

BatchSender = Callable[[Sequence[Mapping[str, object]]], None]


def drive(
    send: BatchSender,
    records: Sequence[Mapping[str, object]],
    rate: float | None,
    batch: int,
) -> list[tuple[str, float, float]]:
    """Send ``records``; returns (signal id, due time, publish-call time) per record.

    Without a rate, batches of ``batch`` go out back to back and a record is due
    when its batch's call begins. With a rate, record *i* is due at start + i/rate
    and every call takes all records already due (at most ``batch``), so a slow
    call is followed by a bigger one and the schedule does not drift.
    """
    sent: list[tuple[str, float, float]] = []
    if rate is None:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            called = time.time()
            send(chunk)
            sent += [(str(r["signal_id"]), called, called) for r in chunk]
        return sent
    interval = 1.0 / rate
    begin = time.time() + 0.01
    index = 0
    while index < len(records):
        now = time.time()
        due = min(len(records), math.floor((now - begin) / interval) + 1, index + batch)
        if due <= index:
            time.sleep(max(0.0, begin + index * interval - now))
            continue
        chunk = records[index:due]
        send(chunk)
        sent += [
            (str(r["signal_id"]), begin + (index + k) * interval, now) for k, r in enumerate(chunk)
        ]
        index = due
    return sent


def sigex_sender(spec: RoleSpec) -> tuple[BatchSender, Callable[[], None]]:
    state = Path(spec.state_dir)
    publisher = Publisher(
        identity=load_party(state, SENDER),
        directory=load_directory(state),
        policy=load_policy(),
        catalogue=load_catalogue(),
        connection=spec.connection(SENDER),
        record_key=load_or_create_record_key(state, SENDER),
    )

    def send(chunk: Sequence[Mapping[str, object]]) -> None:
        result = publisher.publish(SIGNAL, PURPOSE, chunk)
        if result.refused or len(result.published) != len(chunk):
            raise RuntimeError(f"{len(result.refused)} signals refused at publish")

    return send, publisher.close


def baseline_sender(spec: RoleSpec) -> tuple[BatchSender, Callable[[], None]]:
    schema = load_catalogue().signal(SIGNAL).parsed_schema
    producer = KafkaProducer(**PRODUCER_SETTINGS, **spec.connection(SENDER).options())

    def send(chunk: Sequence[Mapping[str, object]]) -> None:
        futures = []
        for record in chunk:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, record, strict=True)
            futures.append(
                producer.send(BASELINE_IN, key=str(record["bsn"]).encode(), value=buffer.getvalue())
            )
        producer.flush()
        for future in futures:
            future.get(timeout=60)

    return send, producer.close


def librdkafka_sender(spec: RoleSpec) -> tuple[BatchSender, Callable[[], None]]:
    schema = load_catalogue().signal(SIGNAL).parsed_schema
    return e2e_librdkafka.sender(spec.connection(SENDER).options(), BASELINE_IN, schema)


SENDERS = {
    "sigex-publisher": sigex_sender,
    "baseline-publisher": baseline_sender,
    "librdkafka-publisher": librdkafka_sender,
}


def run_publisher(spec: RoleSpec, stop: StopFlag) -> None:
    folder = Path(spec.folder)
    make = SENDERS[spec.role]
    send, close = make(spec)
    try:
        warmup = mismatch_records(
            spec.warmup, spec.seed, spec.municipalities, spec.tag, WARMUP_PHASE
        )
        measured = mismatch_records(
            spec.count, spec.seed + 7, spec.municipalities, spec.tag, MEASURED_PHASE
        )
        drive(send, warmup, None, 100)
        (folder / "publisher.warm").touch()
        while not (folder / "go").exists():
            if stop.wait(0.02):
                return
        sent = drive(send, measured, spec.rate, spec.batch)
        write_json(folder / "publisher.json", {"sent": sent})
        stop.wait(3600)
    finally:
        close()


# ------------------------------------------------------------------ consumers

#: (signal id, (sealed by the sender, decided by the gateway) in epoch seconds, sigex only)
Handler = Callable[[str, tuple[float, float] | None], None]


def sigex_poller(
    spec: RoleSpec, party: str
) -> tuple[Callable[[Handler], None], Callable[[], None]]:
    state = Path(spec.state_dir)
    subscriber = Subscriber(
        identity=load_party(state, party),
        directory=load_directory(state),
        catalogue=load_catalogue(),
        connection=spec.connection(party),
        purposes=(PURPOSE,),
        policy=load_policy(),
        signals=(SIGNAL,),
        name=SUBSCRIBER_NAME,
    )

    def poll(handler: Handler) -> None:
        def on_signal(received: ReceivedSignal) -> None:
            stamps = (received.sent_at.timestamp(), received.decided_at.timestamp())
            handler(str(received.fields["signal_id"]), stamps)

        subscriber.poll(on_signal, timeout_ms=200)

    return poll, subscriber.close


def baseline_poller(
    spec: RoleSpec, party: str
) -> tuple[Callable[[Handler], None], Callable[[], None]]:
    schema = load_catalogue().signal(SIGNAL).parsed_schema
    consumer = KafkaConsumer(
        baseline_out_topic(party),
        group_id=f"sigex.{party}.{BASELINE_CONSUMER_NAME}",
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **spec.connection(party).options(),
    )

    def poll(handler: Handler) -> None:
        batch = consumer.poll(timeout_ms=200)
        for messages in batch.values():
            for message in messages:
                handler(str(read_record(message.value, schema)["signal_id"]), None)
        if batch:
            consumer.commit()

    return poll, consumer.close


def librdkafka_poller(
    spec: RoleSpec, party: str
) -> tuple[Callable[[Handler], None], Callable[[], None]]:
    poll, close = e2e_librdkafka.poller(
        spec.connection(party).options(),
        baseline_out_topic(party),
        f"sigex.{party}.{e2e_librdkafka.CONSUMER_NAME}",
        load_catalogue().signal(SIGNAL).parsed_schema,
    )
    return (lambda handler: poll(lambda signal_id: handler(signal_id, None))), close


POLLERS = {
    "sigex-consumer": sigex_poller,
    "baseline-consumer": baseline_poller,
    "librdkafka-consumer": librdkafka_poller,
}


def run_consumer(spec: RoleSpec, stop: StopFlag) -> None:
    """One thread per municipality, each with its own client authenticated as that party."""
    folder = Path(spec.folder)
    make = POLLERS[spec.role]
    received: list[tuple[str, float] | tuple[str, float, float, float]] = []
    failures: list[str] = []
    recovered: list[str] = []

    seen: tuple[set[str], set[str]] = (set(), set())  # this run's warm-up and measured ids

    def handler(signal_id: str, stamps: tuple[float, float] | None) -> None:
        now = time.time()
        received.append((signal_id, now) if stamps is None else (signal_id, now, *stamps))
        tag, phase = signal_tag(signal_id)
        if tag == spec.tag:
            seen[phase].add(signal_id)

    def loop(party: str) -> None:
        profiler = cProfile.Profile() if spec.profile else None
        if profiler is not None:
            profiler.enable()  # profiles this thread only
        try:
            poll, close = make(spec, party)
        except Exception as error:
            failures.append(f"{party}: {type(error).__name__}: {error}")
            return
        try:
            while not stop.event.is_set():
                try:
                    poll(handler)
                except (CommitFailedError, RebalanceInProgressError) as error:
                    # a commit during a group rebalance; the next poll rejoins, and what
                    # was not committed comes again (counted as a duplicate, not twice)
                    recovered.append(f"{party}: {type(error).__name__}")
        except Exception as error:
            failures.append(f"{party}: {type(error).__name__}: {error}")
        finally:
            close()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(folder / f"{spec.role}-{party}.prof"))

    threads = [
        threading.Thread(target=loop, args=(party,), daemon=True) for party in spec.municipalities
    ]
    for thread in threads:
        thread.start()
    progress = folder / f"consumer-{spec.instance}.progress"
    while not stop.wait(0.1):
        progress.with_suffix(".partial").write_text(
            f"{len(seen[0])} {len(seen[1])} {len(recovered)}"
        )
        progress.with_suffix(".partial").replace(progress)
        if failures and not any(t.is_alive() for t in threads):
            break
    for thread in threads:
        thread.join(timeout=30)
    write_json(
        folder / f"consumer-{spec.instance}.json",
        {"received": received, "failures": failures, "recovered": recovered},
    )


# ------------------------------------------------------------------ relay (baseline gateway)


def run_relay(spec: RoleSpec, stop: StopFlag) -> None:
    """Consume, route by municipality, produce and commit offsets in one transaction."""
    schema = load_catalogue().signal(SIGNAL).parsed_schema
    options = spec.connection(RELAY).options()
    consumer = KafkaConsumer(
        group_id=BASELINE_RELAY_GROUP,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        **options,
    )
    producer = KafkaProducer(
        transactional_id=f"{BASELINE_RELAY_TRANSACTIONAL}-{spec.instance}",
        **RELAY_PRODUCER_SETTINGS,
        **options,
    )
    try:
        producer.init_transactions()
        consumer.subscribe(topics=[BASELINE_IN])
        while not stop.event.is_set():
            batch = consumer.poll(timeout_ms=500)
            if batch:
                relay_batch(consumer, producer, batch, schema)
    finally:
        producer.close()
        consumer.close()


def relay_batch(
    consumer: KafkaConsumer, producer: KafkaProducer, batch: dict[Any, list[Any]], schema: Any
) -> None:
    offsets = {
        tp: OffsetAndMetadata(messages[-1].offset + 1, "", -1) for tp, messages in batch.items()
    }
    try:
        producer.begin_transaction()
        for messages in batch.values():
            for message in messages:
                record = read_record(message.value, schema)
                producer.send(
                    baseline_out_topic(str(record["municipality"])),
                    key=message.key,
                    value=message.value,
                    headers=list(message.headers or ()),
                )
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        producer.commit_transaction()
    except ProducerFencedError:
        raise
    except KafkaError:
        producer.abort_transaction()
        for tp, messages in batch.items():
            consumer.seek(TopicPartition(tp.topic, tp.partition), messages[0].offset)


def run_librdkafka_relay(spec: RoleSpec, stop: StopFlag) -> None:
    """The relay on librdkafka: the same routing, one transaction per poll."""
    schema = load_catalogue().signal(SIGNAL).parsed_schema

    def route(value: bytes) -> str:
        return baseline_out_topic(str(read_record(value, schema)["municipality"]))

    e2e_librdkafka.relay(
        spec.connection(RELAY).options(), BASELINE_IN, route, spec.instance, stop.event.is_set
    )


# ------------------------------------------------------------------ main

ROLES: dict[str, Callable[[RoleSpec, StopFlag], None]] = {
    "sigex-publisher": run_publisher,
    "baseline-publisher": run_publisher,
    "sigex-consumer": run_consumer,
    "baseline-consumer": run_consumer,
    "baseline-relay": run_relay,
    "librdkafka-publisher": run_publisher,
    "librdkafka-consumer": run_consumer,
    "librdkafka-relay": run_librdkafka_relay,
}


def main(argv: Sequence[str]) -> int:
    spec = RoleSpec.from_json(argv[0])
    configure_logs(json=False, level="WARNING")  # what the sigex command line does by default
    if os.environ.get("BENCH_E2E_KAFKA_LOG"):
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("kafka.coordinator").setLevel(logging.INFO)
    stop = StopFlag()
    role = ROLES[spec.role]
    if not spec.profile or role is run_consumer:  # the consumer profiles its threads itself
        role(spec, stop)
        return 0
    profiler = cProfile.Profile()
    try:
        profiler.runcall(role, spec, stop)
    finally:
        profiler.dump_stats(str(Path(spec.folder) / f"{spec.role}-{spec.instance}.prof"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
