"""Run every benchmark, each beside its baseline, and refresh bench/results/.

Usage: .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]

Full runs take a while on a 2-core machine (the access log's million records
and the reference finders' million people dominate); ``--quick`` runs each
benchmark's short mode where it has one, and does not overwrite the recorded
results in that case.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = {
    "policy": ["bench_policy.py"],
    "envelope": ["bench_envelope.py"],
    "observability": ["bench_observability.py"],
    "accesslog": ["bench_accesslog.py"],
    "reference-memory": ["bench_reference_memory.py"],
    "e2e": ["bench_e2e.py"],
    "kafka-records": ["bench_kafka_records.py"],
    "node": ["bench_node.py"],
    "console": ["bench_console.py"],
}
QUICK_CAPABLE = {
    "policy",
    "envelope",
    "observability",
    "accesslog",
    "e2e",
    "kafka-records",
    "node",
    "console",
}
NO_WRITE_CAPABLE = {"envelope", "accesslog", "e2e", "kafka-records", "reference-memory", "console"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, results not recorded")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    options = parser.parse_args()
    failed = []
    for name in options.only or list(BENCHMARKS):
        command = [sys.executable, str(BENCH / BENCHMARKS[name][0])]
        if options.quick:
            if name not in QUICK_CAPABLE:
                print(f"== {name}: no quick mode, skipped")
                continue
            command.append("--quick")
            if name in NO_WRITE_CAPABLE:
                command.append("--no-write")
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, check=False)
        print(f"== {name}: exit {result.returncode} after {time.monotonic() - started:.0f} s")
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
