"""Benchmark: the auditor's console at a million records, against the bare store, in one run.

Run: ``.venv/bin/python bench/bench_console.py`` (``--db postgresql://...`` for
PostgreSQL, ``--quick`` for 20 000 records). Writes
``bench/results/console.md`` and ``.json`` (``console.postgresql.*`` for
PostgreSQL).

The log is filled to ``--records`` records (about ten per person) with
``bench_accesslog``'s records and kept in ``--workdir`` between runs (a SQLite
file that is already full is reused). Then, interleaved request by request:

* **search by BSN**: the console's ``POST /search`` over HTTPS with the
  auditor's client certificate (uvicorn, mutual TLS, a kept-alive connection),
  which pseudonymises the BSN, writes and signs its consultation record, queries
  and renders the page; against the baseline, the store's own query for that
  pseudonym (the first 50 records, parsed), with no HTTP, template or logging;
* **a record page**: ``GET /records/<n>`` for a random record, which also
  builds its inclusion proof to the latest checkpoint and lists the records of
  the same exchange; against the store's own record lookup, latest checkpoint
  and inclusion proof.

The aim of issue 14: each console answer under 100 ms at p99.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
from bench_accesslog import fill, people
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.console.app import create_console_app
from sigex.audit.console.consultations import ConsultationLog
from sigex.audit.console.server import console_server, principal_from_certificate
from sigex.audit.console.service import PAGE_SIZE, AuditConsole
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.clock import FixedClock, SystemClock
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.identity.node_tls import issue_node_certificates
from sigex.policies.compiler import load_policy

RESULTS = Path(__file__).parent / "results"
AIM_MS = 100.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def open_log(args: argparse.Namespace, total: int) -> tuple[str, Ed25519PrivateKey]:
    """The filled log's location, and a key that signs its (next) checkpoints."""
    rng = random.Random(20270101)
    key = Ed25519PrivateKey.generate()
    if args.db:
        location = args.db
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        location = str(args.workdir / f"console-{total}.sqlite")
    with AccessLogStore.open(location) as store:
        if store.size() < total:  # a log filled by an earlier run is reused as it is
            print(f"filling the log to {total} records", file=sys.stderr)
            subjects = [PSEUDONYMS.pseudonym(b) for b in BSNS[: max(total // 10, 100)]]
            fill(store, total, subjects, rng, key, FixedClock())
        store.checkpoint(key, SystemClock())  # one this run's key signed
    return location, key


PSEUDONYMS = SubjectPseudonymiser(b"bench-pseudonym-key-32-bytes-long")
BSNS: list[str] = []


def main() -> None:  # one straight run: set up, measure, report
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--db", default=None, help="postgresql:// DSN (default: a SQLite file)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigex-bench-console"))
    parser.add_argument("--quick", action="store_true", help="20 000 records, 200 requests")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results")
    args = parser.parse_args()
    total = 20_000 if args.quick else args.records
    requests = 200 if args.quick else args.requests
    BSNS.extend(people(max(total // 10, 100)))
    location, key = open_log(args, total)

    work = Path(tempfile.mkdtemp(prefix="sigex-bench-console-"))
    certificates = issue_node_certificates(work / "tls", "AUDIT", clients=["AUDITOR"])
    console = AuditConsole(
        open_store=lambda: AccessLogStore.open(location),
        party_kinds={"AUDITOR": "auditor"},
        party_names={},
        pseudonymiser=PSEUDONYMS,
        policy=load_policy(),
        consultations=ConsultationLog(SystemClock(), key),
        clock=SystemClock(),
        verification_file=work / "last-verification.json",
        trusted_keys=key.public_key(),
    )
    app = create_console_app(console, principal_from_certificate(None))
    server = console_server(
        app, "127.0.0.1", 0, certificates.server_cert, certificates.server_key, certificates.ca
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    tls = ssl.create_default_context(cafile=str(certificates.ca))
    auditor_cert, auditor_key = certificates.clients["AUDITOR"]
    tls.load_cert_chain(str(auditor_cert), str(auditor_key))
    client = httpx.Client(base_url=url, verify=tls, headers={"origin": url}, timeout=30)
    rng = random.Random(7)
    baseline_store = AccessLogStore.open(location)

    def console_search(bsn: str) -> None:
        answer = client.post("/search", data={"bsn": bsn})
        assert answer.status_code == 200, answer.text[:300]

    def baseline_search(bsn: str) -> None:
        found = baseline_store.query(
            RecordFilter(subject=PSEUDONYMS.pseudonym(bsn)), limit=PAGE_SIZE
        )
        assert found.records

    def console_record(leaf: int) -> None:
        answer = client.get(f"/records/{leaf}")
        assert answer.status_code == 200 and 'id="proof"' in answer.text, answer.text[:300]

    def baseline_record(leaf: int) -> None:
        page = baseline_store.query(RecordFilter(), limit=1, after=leaf - 1)
        latest = baseline_store.latest_checkpoint()
        assert page.records and latest is not None
        baseline_store.inclusion_proof(leaf, latest.tree_size)

    for _ in range(20):  # warm up both paths (connections, page cache, templates)
        console_search(rng.choice(BSNS))
        console_record(rng.randrange(total))
    timings: dict[str, list[float]] = {k: [] for k in ("cs", "bs", "cr", "br")}
    print(f"measuring {requests} requests of each kind", file=sys.stderr)
    for number in range(requests):
        bsn, leaf = rng.choice(BSNS), rng.randrange(total)
        pairs: list[tuple[str, Callable[[], None]]] = [
            ("cs", partial(console_search, bsn)),
            ("bs", partial(baseline_search, bsn)),
            ("cr", partial(console_record, leaf)),
            ("br", partial(baseline_record, leaf)),
        ]
        for name, action in pairs if number % 2 == 0 else reversed(pairs):
            timings[name].append(timed(action))
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
    dialect = baseline_store.backend.dialect
    final_size = baseline_store.size()
    baseline_store.close()

    search, search_base = summary(timings["cs"]), summary(timings["bs"])
    record, record_base = summary(timings["cr"]), summary(timings["br"])
    result = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "database": dialect,
            "records": total,
            "records_after": final_size,
            "requests": requests,
        },
        "search_by_bsn": {"console": search, "baseline": search_base},
        "record_page": {"console": record, "baseline": record_base},
        "aim_p99_ms": AIM_MS,
        "met": search["p99_ms"] < AIM_MS and record["p99_ms"] < AIM_MS,
    }
    print(json.dumps(result, indent=2))
    if args.no_write or args.quick:
        return
    name = "console" if dialect == "sqlite" else f"console.{dialect}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(result))
    print(f"wrote {RESULTS / (name + '.md')} and {name}.json", file=sys.stderr)


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]

    def row(label: str, part: dict[str, dict[str, float]]) -> str:
        console, base = part["console"], part["baseline"]
        ratio = round(console["p99_ms"] / base["p99_ms"], 1) if base["p99_ms"] else "-"
        met = "met" if console["p99_ms"] < AIM_MS else "NOT met"
        return (
            f"| {label} | {console['p50_ms']} / {console['p99_ms']} ms | "
            f"{base['p50_ms']} / {base['p99_ms']} ms | {ratio}x | < {AIM_MS:.0f} ms: {met} |"
        )

    return f"""# Auditor's console benchmark ({meta["database"]})

Run by `bench/bench_console.py` on {meta["date"]}: Python {meta["python"]}, {meta["machine"]};
a log of {meta["records"]} records (about ten per person), {meta["requests"]} requests of each
kind, interleaved with the baseline; {meta["records_after"]} records at the end (every console
answer wrote its consultation record first).

| what | console p50 / p99 | store alone p50 / p99 | p99 ratio | aim (p99) |
|---|---|---|---|---|
{row("search by BSN (`POST /search`)", result["search_by_bsn"])}
{row("a record page (`GET /records/<n>`)", result["record_page"])}

The console's time is measured by the client, over HTTPS with a client
certificate on a kept-alive connection: parsing the form, pseudonymising the
BSN, writing the consultation record and signing a checkpoint over it,
querying, building the inclusion proof, rendering the page. The baseline is
the store's own query (or record lookup and inclusion proof) in the
benchmark's process, with none of that around it.
"""


if __name__ == "__main__":
    main()
