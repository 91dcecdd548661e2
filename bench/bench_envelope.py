"""Benchmark: envelope v1 against the naive baseline, side by side in one run.

Run: ``.venv/bin/python bench/bench_envelope.py`` (add ``--quick`` for a short run).
Writes ``bench/results/envelope.md`` and ``bench/results/envelope.json``.

The baseline is what a team writes first: per message one Ed25519 signature
over the payload and one X25519 exchange (an HPKE single-shot seal of the
payload for the recipient); opening undoes both (HPKE open, Ed25519 verify).
Envelope v1 signs one Merkle root per batch and reuses a wrapped data key.
Both sides encode the same fields and run in the same process, one thread.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sigex.clock import FixedClock
from sigex.envelope import Opener, OutgoingRecord, SealContext, Sealer
from sigex.envelope import _wire as wire
from sigex.identity import _primitives as primitives
from sigex.identity.testing import directory_for, fixed_identity

RESULTS = Path(__file__).parent / "results"
#: best wall-clock seconds per message (envelope v1, baseline) of each measured pair
WALL: list[tuple[float, float]] = []
BATCHES = (1, 64, 256, 512)
TOPIC = "payroll.bsn-mismatch.in"
CONTEXT = SealContext(
    topic=TOPIC,
    signal="payroll.bsn-mismatch",
    schema_fingerprint="9f2c1e0d4b7a6c5e",
    sender="UWV",
    recipient="GATEWAY",
    purpose="SUWI64_ARB",
    agreement="AGR-UWV-NLA-0001",
)


def sample_fields(index: int) -> dict[str, bytes]:
    """Twelve fields, about 300 bytes, shaped like an encoded payroll mismatch signal."""
    return {
        "bsn": b"%09d" % (100000000 + index),
        "kind": b"NON_RESIDENT_NO_ADDRESS",
        "employer_kvk": b"12345678",
        "employer_loonheffingennummer": b"123456789L01",
        "employer_name": b"Uitzendbureau Voorbeeld B.V.",
        "period_start": b"2027-01-01",
        "period_end": b"2027-01-31",
        "name": b"J. de Vries",
        "birth_date": b"1990-05-17",
        "municipality": b"GM0363",
        "wage_cents": (12345678 + index).to_bytes(8, "big"),
        "remarks": b"x" * 120,
    }


class Baseline:
    """Per message: Ed25519 sign + HPKE seal (one X25519 exchange); open: HPKE open + verify."""

    def __init__(self, signing: primitives.Ed25519PrivateKey, recipient_public: bytes) -> None:
        self.signing = signing
        self.verifying = signing.public_key()
        self.recipient = primitives.encryption_public_key(recipient_public)

    @staticmethod
    def encode(fields: dict[str, bytes]) -> bytes:
        return b"".join(wire.text(k) + wire.blob(v) for k, v in sorted(fields.items()))

    def seal(self, records: Sequence[dict[str, bytes]]) -> list[bytes]:
        out = []
        for fields in records:
            payload = self.encode(fields)
            signature = primitives.sign(self.signing, TOPIC.encode() + payload)
            out.append(primitives.hpke_wrap(self.recipient, signature + payload, TOPIC.encode()))
        return out

    def open(self, private: primitives.X25519PrivateKey, envelopes: Sequence[bytes]) -> None:
        for envelope in envelopes:
            plain = primitives.hpke_unwrap(private, envelope, TOPIC.encode())
            primitives.verify_signature(self.verifying, plain[:64], TOPIC.encode() + plain[64:])


def measure_pair(
    first: Callable[[], object], second: Callable[[], object], messages: int, rounds: int
) -> tuple[list[float], list[float]]:
    """CPU seconds per message of two runs, interleaved round by round (same load for both).

    CPU time of this process (``time.process_time``) is what "per core" means, and
    unlike wall time it does not count the time other programs on the shared
    machine held the CPU. Wall-clock seconds go to ``WALL`` for the record.
    """
    samples: tuple[list[float], list[float]] = ([], [])
    walls: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for index, run in enumerate((first, second)):
            gc.collect()
            wall = time.perf_counter()
            start = time.process_time()
            run()
            samples[index].append((time.process_time() - start) / messages)
            walls[index].append((time.perf_counter() - wall) / messages)
    WALL.append((min(walls[0]), min(walls[1])))
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {"best_us": min(samples) * 1e6, "median_us": statistics.median(samples) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    target = 512 if args.quick else 2048  # messages per round and configuration
    rounds = 3 if args.quick else 9

    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    clock = FixedClock(datetime(2027, 2, 1, tzinfo=UTC))
    sender = fixed_identity("UWV", b"bench")
    gateway = fixed_identity("GATEWAY", b"bench")
    directory = directory_for(
        [sender, gateway], datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
    )
    sealer = Sealer(identity=sender, directory=directory, clock=clock)
    opener = Opener(identity=gateway, directory=directory, clock=clock)
    baseline = Baseline(
        sender.signing_key, primitives.raw_public_encryption(gateway.encryption_key)
    )
    records = [OutgoingRecord.of(CONTEXT, sample_fields(i)) for i in range(target)]
    plain = [sample_fields(i) for i in range(target)]

    rows = []
    for batch in BATCHES:
        count = max(batch, (target // batch) * batch)
        if batch == 1:
            count = min(count, 1024)
        groups = [records[i : i + batch] for i in range(0, count, batch)]
        plain_groups = [plain[i : i + batch] for i in range(0, count, batch)]

        def seal_v1(groups: list[list[OutgoingRecord]] = groups) -> None:
            for group in groups:
                sealer.seal(group)

        def seal_base(groups: list[list[dict[str, bytes]]] = plain_groups) -> None:
            for group in groups:
                baseline.seal(group)

        sealed_v1 = [sealer.seal(g) for g in groups]
        sealed_base = [baseline.seal(g) for g in plain_groups]

        def open_v1(sealed: list[tuple[bytes, ...]] = sealed_v1) -> None:
            # a fresh root cache per round, as every batch arrives once; data keys stay cached
            opener.replace_directory(directory)
            for group in sealed:
                for envelope in group:
                    opener.open_submission(envelope, topic=TOPIC)

        def open_base(sealed: list[list[bytes]] = sealed_base) -> None:
            for group in sealed:
                baseline.open(gateway.encryption_key, group)

        v1_seals, base_seals = measure_pair(seal_v1, seal_base, count, rounds)
        v1_opens, base_opens = measure_pair(open_v1, open_base, count, rounds)
        v1_seal, base_seal = min(v1_seals), min(base_seals)
        v1_open, base_open = min(v1_opens), min(base_opens)
        row = {
            "batch": batch,
            "messages_per_round": count,
            "seal_us": {"envelope_v1": v1_seal * 1e6, "baseline": base_seal * 1e6},
            "open_us": {"envelope_v1": v1_open * 1e6, "baseline": base_open * 1e6},
            "seal_msgs_per_s": {"envelope_v1": 1 / v1_seal, "baseline": 1 / base_seal},
            "open_msgs_per_s": {"envelope_v1": 1 / v1_open, "baseline": 1 / base_open},
            "seal_speedup": base_seal / v1_seal,
            "open_speedup": base_open / v1_open,
            "samples": {
                "seal_envelope_v1": summary(v1_seals),
                "seal_baseline": summary(base_seals),
                "open_envelope_v1": summary(v1_opens),
                "open_baseline": summary(base_opens),
            },
            "wall_best_us": {
                "seal_envelope_v1": WALL[-2][0] * 1e6,
                "seal_baseline": WALL[-2][1] * 1e6,
                "open_envelope_v1": WALL[-1][0] * 1e6,
                "open_baseline": WALL[-1][1] * 1e6,
            },
            "median_seal_speedup": statistics.median(base_seals) / statistics.median(v1_seals),
            "median_open_speedup": statistics.median(base_opens) / statistics.median(v1_opens),
        }
        rows.append(row)
        print(
            f"batch {batch:4}: seal {v1_seal * 1e6:7.1f} us vs {base_seal * 1e6:7.1f} us"
            f" (x{row['seal_speedup']:.1f}), {1 / v1_seal:8.0f} msg/s;"
            f" open {v1_open * 1e6:7.1f} us vs {base_open * 1e6:7.1f} us"
            f" (x{row['open_speedup']:.1f}), {1 / v1_open:8.0f} msg/s"
        )

    envelope_size = len(sealer.seal(records[:1])[0])
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "fields_per_message": len(plain[0]),
        "payload_bytes": len(Baseline.encode(plain[0])),
        "envelope_v1_bytes": envelope_size,
        "rounds": rounds,
        "quick": args.quick,
        "load_average": load_at_start,
    }
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "envelope.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        (RESULTS / "envelope.md").write_text(_markdown(meta, rows))
        print(f"wrote {RESULTS / 'envelope.md'} and envelope.json")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _markdown(meta: dict[str, object], rows: list[dict[str, object]]) -> str:
    lines = [
        "# Envelope v1 against the naive baseline",
        "",
        "Produced by `.venv/bin/python bench/bench_envelope.py` (one process, one thread,",
        "both sides side by side in the same run). Baseline: per message one Ed25519",
        "signature and one X25519 exchange (HPKE single-shot); opening does HPKE open and",
        "an Ed25519 verification per message. Envelope v1: one Ed25519 signature per batch",
        "(Merkle root), a cached HPKE-wrapped data key, AES-256-GCM per message; opening",
        "verifies each batch root once (a fresh root cache per round) and the path per message.",
        "",
        f"- date: {meta['date']}; Python {meta['python']}; {meta['processor']}"
        f" ({meta['cpus']} CPUs)",
        f"- message: {meta['fields_per_message']} fields, {meta['payload_bytes']} payload bytes;"
        f" envelope v1 at batch 1: {meta['envelope_v1_bytes']} bytes",
        f"- {meta['rounds']} rounds per configuration, envelope v1 and baseline interleaved"
        " round by round; the table shows the best round of each (the least disturbed by other"
        " work on the shared machine), the JSON file also has the medians",
        f"- load average when the run started: {meta['load_average']}",
        "",
        "Times are CPU time of the benchmark process per message (`time.process_time`),"
        " so msg/s is per core.",
        "",
        "| batch | seal v1 µs/msg | seal baseline µs/msg | seal ratio | seal v1 msg/s"
        " | open v1 µs/msg | open baseline µs/msg | open ratio | open v1 msg/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        seal: dict[str, float] = row["seal_us"]  # type: ignore[assignment]
        opened: dict[str, float] = row["open_us"]  # type: ignore[assignment]
        lines.append(
            f"| {row['batch']} | {seal['envelope_v1']:.1f} | {seal['baseline']:.1f}"
            f" | {row['seal_speedup']:.1f}x | {1e6 / seal['envelope_v1']:,.0f}"
            f" | {opened['envelope_v1']:.1f} | {opened['baseline']:.1f}"
            f" | {row['open_speedup']:.1f}x | {1e6 / opened['envelope_v1']:,.0f} |"
        )
    lines += [
        "",
        "Medians (same rounds): "
        + "; ".join(
            f"batch {row['batch']}: seal x{row['median_seal_speedup']:.1f},"
            f" open x{row['median_open_speedup']:.1f}"
            for row in rows
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
