"""Benchmark: the access log store against plain inserts, side by side in one run.

Run: ``.venv/bin/python bench/bench_accesslog.py`` (``--quick`` for a short run,
``--db postgresql://...`` for PostgreSQL, ``--records N`` to change the size).
Writes ``bench/results/accesslog.md`` and ``bench/results/accesslog.json``
(for SQLite; other databases get their own suffix).

Three measurements, one thread, one database file:

1. **Indexing rate.** The same records, in batches of 500, are written two
   ways into twin tables with the same columns and indexes: the baseline
   inserts the rows as they are (canonical bytes, no hashing, no Merkle
   nodes, no replay check); the store appends them (replay check, leaf
   hashes, stored subtree hashes). The two run interleaved chunk by chunk so
   drift in the machine hits both equally; the ratio is the result.
2. **Verify.** The store is filled to ``--records`` (a checkpoint every 100 000
   records), then ``verify_store`` reads and checks every row once.
3. **Per-person query.** With the full log (subjects spread over
   ``records / 10`` people), ``--queries`` queries for random people's
   records; the p50 and p99 latency of each, including parsing the records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.backends import schema_statements
from sigex.audit.store import RECORD_COLUMNS, AccessLogStore, RecordFilter, record_row
from sigex.audit.verify import verify_store
from sigex.clock import FixedClock
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.identifiers import is_valid_bsn

RESULTS = Path(__file__).parent / "results"
BATCH = 500
RECIPIENTS = ("GM0363", "GM0599", "NLA", "BD", "UWV", "GM0344")
PURPOSES = ("LAA_SIGNAAL", "SUWI64_ARB", "SUWI64_FISC", "BRP_TERUGMELDING")


def people(count: int) -> list[str]:
    """``count`` valid BSNs (synthetic)."""
    found: list[str] = []
    prefix = 10000000
    while len(found) < count:
        found += [f"{prefix}{d}" for d in range(10) if is_valid_bsn(f"{prefix}{d}")][:1]
        prefix += 1
    return found


def records(
    start: int, count: int, subjects: list[str], rng: random.Random
) -> Iterator[AccessRecord]:
    base = datetime(2027, 1, 1, tzinfo=UTC)
    for number in range(start, start + count):
        refused = number % 7 == 0
        yield AccessRecord(
            trace_id=f"{number + 1:032x}",
            operation_id=f"{rng.getrandbits(64):016x}",
            occurred_at=base + timedelta(seconds=number),
            kind=EventKind.REFUSED_FOR_RECIPIENT if refused else EventKind.DELIVERED,
            sender="RVIG" if number % 2 else "UWV",
            recipient=RECIPIENTS[number % len(RECIPIENTS)],
            signal="laa.frequent-mover" if number % 2 else "payroll.bsn-mismatch",
            purpose=PURPOSES[number % len(PURPOSES)],
            legal_basis="NL.WBRP.LAA" if number % 2 else "NL.SUWI.64",
            agreement_id=f"AGR-{number % 40:04d}",
            agreement_version=1 + number % 3,
            policy_version="2027.01.1",
            outcome=Outcome.DENY if refused else Outcome.PERMIT,
            reason_codes=("NO_AGREEMENT",) if refused else (),
            disclosed_fields=() if refused else ("bsn", "address", "moves_in_year"),
            message_id=str(uuid.UUID(int=number + 1)),
            subject=subjects[rng.randrange(len(subjects))],
        )


def plain_insert(store: AccessLogStore, batch: list[AccessRecord], first_index: int) -> None:
    """The baseline: the same rows, no hashing, no nodes, no replay check."""
    rows = [
        record_row(first_index + offset, record, record.to_bytes(), b"")
        for offset, record in enumerate(batch)
    ]
    marks = ", ".join("?" for _ in RECORD_COLUMNS)
    with store.backend.write_transaction():
        store.backend.executemany(
            f"INSERT INTO plain_records ({', '.join(RECORD_COLUMNS)}) VALUES ({marks})", rows
        )


def measure_rates(
    store: AccessLogStore, count: int, subjects: list[str], rng: random.Random
) -> dict[str, float]:
    int_type, blob_type = (
        ("INTEGER", "BLOB") if store.backend.dialect == "sqlite" else ("BIGINT", "BYTEA")
    )
    for statement in schema_statements(int_type, blob_type, table="plain_records"):
        store.backend.execute(statement)
    plain_seconds = indexed_seconds = 0.0
    done = 0
    chunk = 20 * BATCH
    while done < count:
        batch_records = list(records(done, min(chunk, count - done), subjects, rng))
        order = (0, 1) if (done // chunk) % 2 == 0 else (1, 0)
        for side in order:
            for start in range(0, len(batch_records), BATCH):
                part = batch_records[start : start + BATCH]
                began = time.perf_counter()
                if side == 0:
                    plain_insert(store, part, done + start)
                    plain_seconds += time.perf_counter() - began
                else:
                    store.append(part)
                    indexed_seconds += time.perf_counter() - began
        done += len(batch_records)
    plain_rate = count / plain_seconds
    indexed_rate = count / indexed_seconds
    return {
        "records": count,
        "plain_inserts_per_second": round(plain_rate),
        "indexed_per_second": round(indexed_rate),
        "ratio_indexed_to_plain": round(indexed_rate / plain_rate, 3),
    }


def fill(
    store: AccessLogStore,
    total: int,
    subjects: list[str],
    rng: random.Random,
    key: Ed25519PrivateKey,
    clock: FixedClock,
) -> None:
    size = store.size()
    while size < total:
        batch = list(records(size, min(10 * BATCH, total - size), subjects, rng))
        for start in range(0, len(batch), BATCH):
            store.append(batch[start : start + BATCH])
        size = store.size()
        if size % 100_000 == 0 or size == total:
            store.checkpoint(key, clock)
            clock.advance(timedelta(minutes=1))
            print(f"  filled {size} records", file=sys.stderr)


def measure_queries(
    store: AccessLogStore, pseudonyms: list[str], queries: int, rng: random.Random
) -> dict[str, float]:
    latencies: list[float] = []
    found = 0
    for _ in range(queries):
        subject = pseudonyms[rng.randrange(len(pseudonyms))]
        began = time.perf_counter()
        page = store.query(RecordFilter(subject=subject), limit=100)
        latencies.append(time.perf_counter() - began)
        found += len(page.records)
    latencies.sort()
    return {
        "queries": queries,
        "mean_records_per_person": round(found / queries, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate-records", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--db", default=None, help="postgresql:// DSN (default: a SQLite file)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigex-bench-accesslog"))
    parser.add_argument("--quick", action="store_true", help="20 000 records, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results")
    args = parser.parse_args()
    total = 20_000 if args.quick else args.records
    rate_records = min(args.rate_records, total // 2)
    rng = random.Random(20270101)
    pseudonymiser = SubjectPseudonymiser(b"bench-pseudonym-key-32-bytes-long")
    bsns = people(max(total // 10, 100))
    subjects = [pseudonymiser.pseudonym(b) for b in bsns]

    if args.db:
        location = args.db
        with AccessLogStore.open(location) as cleaner:
            for table in ("access_records", "merkle_nodes", "checkpoints"):
                cleaner.backend.execute(f"DELETE FROM {table}")
            cleaner.backend.execute("DROP TABLE IF EXISTS plain_records")
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        path = args.workdir / "bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        location = str(path)

    key = Ed25519PrivateKey.generate()
    clock = FixedClock()
    with AccessLogStore.open(location) as store:
        print(f"indexing vs plain inserts, {rate_records} records each", file=sys.stderr)
        rates = measure_rates(store, rate_records, subjects, rng)
        print(f"  {rates}", file=sys.stderr)
        store.backend.execute("DROP TABLE plain_records")
        print(f"filling the log to {total} records", file=sys.stderr)
        fill(store, total, subjects, rng, key, clock)
        print("verifying", file=sys.stderr)
        began = time.perf_counter()
        report = verify_store(store, public_key=key.public_key())
        verify_seconds = time.perf_counter() - began
        assert report.ok, report.findings[:5]
        print(f"  {verify_seconds:.1f} s: {report.summary()}", file=sys.stderr)
        print("per-person queries", file=sys.stderr)
        queries = measure_queries(store, subjects, args.queries, rng)
        print(f"  {queries}", file=sys.stderr)
        dialect = store.backend.dialect

    result = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "database": dialect,
            "batch": BATCH,
        },
        "indexing": rates,
        "verify": {
            "records": report.tree_size,
            "checkpoints": report.checkpoints_checked,
            "seconds": round(verify_seconds, 2),
            "records_per_second": round(report.tree_size / verify_seconds),
        },
        "per_person_query": queries,
    }
    print(json.dumps(result, indent=2))
    if args.no_write or args.quick:
        return
    name = "accesslog" if dialect == "sqlite" else f"accesslog.{dialect}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(result))
    print(f"wrote {RESULTS / (name + '.md')} and {name}.json", file=sys.stderr)


def render(result: dict[str, dict[str, object]]) -> str:
    meta, rates, verify, queries = (
        result["meta"],
        result["indexing"],
        result["verify"],
        result["per_person_query"],
    )
    verify_label = (
        f"verify the whole log ({verify['records']} records, {verify['checkpoints']} checkpoints)"
    )
    verify_result = f"{verify['seconds']} s ({verify['records_per_second']} records/s)"
    query_label = (
        f"per-person query p50 / p99 ({queries['queries']} queries, "
        f"about {queries['mean_records_per_person']} records each)"
    )
    query_result = f"{queries['p50_ms']} ms / {queries['p99_ms']} ms"
    return f"""# Access log benchmark ({meta["database"]})

Run by `bench/bench_accesslog.py` on {meta["date"]}: Python {meta["python"]}, {meta["machine"]},
one thread, batches of {meta["batch"]} records.

| measurement | result | aim |
|---|---|---|
| plain inserts of the same rows (baseline) | {rates["plain_inserts_per_second"]} records/s | |
| indexed into the Merkle log | {rates["indexed_per_second"]} records/s | |
| ratio indexed / plain | {rates["ratio_indexed_to_plain"]} | >= 0.5 |
| {verify_label} | {verify_result} | < 60 s for 1 000 000 |
| {query_label} | {query_result} | p99 < 50 ms |

The baseline inserts the same rows (same columns, same indexes, the canonical
bytes included) into a twin table without hashing, subtree hashes or the
replay check; the two run interleaved, chunk by chunk, in the same database.
Verify reads every row once, re-hashes it, checks its columns against its
entry, rebuilds the tree, compares every stored subtree hash and checks every
checkpoint's signature and root. The query fetches up to 100 records of one
pseudonym through its index and parses them.
"""


if __name__ == "__main__":
    main()
