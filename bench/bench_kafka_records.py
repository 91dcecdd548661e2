"""Benchmark: kafka-python's CPU per envelope, one envelope per Kafka record against frames.

Run: ``.venv/bin/python bench/bench_kafka_records.py`` (add ``--quick`` for a short run).
Writes ``bench/results/kafka-records.md`` and ``bench/results/kafka-records.json``.

The question it answers (issue 15): how much CPU would sigex save if it packed several
sealed envelopes into one Kafka record ("frames") instead of one envelope per record?
The same random bytes, sized like sigex's ingress envelopes (about 1,250 bytes) and
deliveries (about 2,400), are produced and consumed by plain kafka-python against a
real local broker, side by side in one run:

- **per record** (the baseline and sigex today): one envelope per ``send``, keyed;
- **framed**: ``FRAME`` envelopes concatenated into one record, one key per frame.

It reports CPU (``time.process_time``: the calling thread and kafka-python's I/O
thread) per envelope for producing (``send`` of everything, then ``flush``) and for
consuming (``poll`` until all arrived), and the saving per envelope. The broker is
plaintext on loopback: TLS costs the same per byte for both rows, so it does not change
the difference this measures. Only the client's CPU is counted, not the broker's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sigex.broker import local
from sigex.broker.jars import kafka_version

RESULTS = Path(__file__).parent / "results"
SIZES = {"ingress envelope": 1_250, "delivery": 2_400}
FRAME = 50
PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class Row:
    envelope: str
    size: int
    per_record: int  # envelopes per Kafka record
    produce_us: float  # CPU µs per envelope, median of the repeats
    consume_us: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _measure(bootstrap: str, size: int, per_record: int, envelopes: int) -> tuple[float, float]:
    """CPU µs per envelope to produce, then to consume, ``envelopes`` envelopes."""
    topic = f"bench-{size}-{per_record}-{time.monotonic_ns()}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    records = envelopes // per_record
    values = [os.urandom(size) * per_record for _ in range(16)]
    keys = [os.urandom(16).hex().encode() for _ in range(records)]
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    )
    started = time.process_time()
    for index, key in enumerate(keys):
        producer.send(topic, key=key, value=values[index % len(values)])
    producer.flush()
    produce = time.process_time() - started
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic,
        auto_offset_reset="earliest",
        max_poll_records=500,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    received = 0
    started = time.process_time()
    deadline = time.monotonic() + 120
    while received < records and time.monotonic() < deadline:
        received += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    consume = time.process_time() - started
    consumer.close()
    if received != records:
        raise RuntimeError(f"consumed {received} of {records} records")
    return produce / envelopes * 1e6, consume / envelopes * 1e6


def run(bootstrap: str, envelopes: int, repeats: int) -> list[Row]:
    rows = []
    for name, size in SIZES.items():
        for per_record in (1, FRAME):
            _measure(bootstrap, size, per_record, min(envelopes, 2_000))  # warm-up
            samples = [_measure(bootstrap, size, per_record, envelopes) for _ in range(repeats)]
            rows.append(
                Row(
                    name,
                    size,
                    per_record,
                    statistics.median(s[0] for s in samples),
                    statistics.median(s[1] for s in samples),
                )
            )
            print(rows[-1], flush=True)
    return rows


def report(rows: list[Row], settings: dict[str, object]) -> str:
    lines = [
        "# kafka-python's CPU per envelope: one per record against frames",
        "",
        f"Produced by `.venv/bin/python bench/bench_kafka_records.py` on "
        f"{datetime.now(UTC):%Y-%m-%d} (settings: {json.dumps(settings)}).",
        "",
        "CPU of the client process (µs per envelope, median of the repeats), plaintext "
        "broker on loopback; the broker's own CPU is not counted.",
        "",
        "| envelope | bytes | envelopes per record | produce µs | consume µs | together |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        together = row.produce_us + row.consume_us
        lines.append(
            f"| {row.envelope} | {row.size:,} | {row.per_record} | {row.produce_us:.1f} "
            f"| {row.consume_us:.1f} | {together:.1f} |"
        )
    lines += ["", "## Saving per envelope from frames", ""]
    for name in SIZES:
        single = next(r for r in rows if r.envelope == name and r.per_record == 1)
        framed = next(r for r in rows if r.envelope == name and r.per_record != 1)
        saved = (single.produce_us + single.consume_us) - (framed.produce_us + framed.consume_us)
        lines.append(f"- {name}: {saved:.1f} µs of client CPU per envelope")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args()
    envelopes, repeats = (5_000, 1) if args.quick else (20_000, 3)
    home = Path(tempfile.mkdtemp(prefix="sigex-bench-records-"))
    settings = local.BrokerSettings(
        home=home, port=_free_port(), controller_port=_free_port(), quick_start=False
    )
    try:
        local.start(settings)
        rows = run(settings.bootstrap, envelopes, repeats)
    finally:
        local.stop(settings)
        shutil.rmtree(home, ignore_errors=True)
    recorded = {
        "envelopes": envelopes,
        "repeats": repeats,
        "frame": FRAME,
        "kafka": kafka_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    text = report(rows, recorded)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "kafka-records.md").write_text(text, encoding="utf-8")
        payload = {"settings": recorded, "rows": [asdict(row) for row in rows]}
        (RESULTS / "kafka-records.json").write_text(
            json.dumps(payload, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
