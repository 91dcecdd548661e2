"""A municipality's case system that takes part in the exchange through its partner node.

This module uses Python's standard library only and imports nothing of
sigex (a test keeps it so): it is what a partner in any language would
write against ``docs/partner-node.md``. For each frequent-mover signal:

1. take it from the node (``GET /v1/deliveries``, a long poll; other signals, such as
   a BSN mismatch, are only put on file);
2. store it in the case file (SQLite; a signal that comes again is stored once);
3. answer with an investigation outcome (``POST /v1/signals/laa.investigation-outcome``)
   under an Idempotency-Key derived from the delivery's message id;
4. only then acknowledge it (``POST /v1/deliveries/ack``).

A crash anywhere makes the node offer the signal again; the case file and
the idempotency key make the second pass harmless. A real municipality
investigates the address; this one picks the outcome from the signal id, so
that runs are repeatable.

    python -m sigex.partners.case_system --node http://127.0.0.1:8470 \\
        --municipality GM0363 --cases cases.sqlite [--until-idle 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SIGNAL = "laa.frequent-mover"
OUTCOME_SIGNAL = "laa.investigation-outcome"
OUTCOME_PURPOSE = "LAA_TERUGKOPPELING"
OUTCOMES = (
    "ADDRESS_CONFIRMED",
    "ADDRESS_CORRECTED",
    "PERSON_DEREGISTERED",
    "NOT_INVESTIGATED",
    "INVESTIGATION_ONGOING",
)
#: statuses after which the same request may be sent again, after Retry-After seconds
RETRYABLE = (409, 429, 502, 503, 504)


class NodeRefused(Exception):
    """The node answered with a problem that sending again will not change."""


def outcome_for(signal_id: str) -> str:
    return OUTCOMES[hashlib.sha256(signal_id.encode()).digest()[0] % len(OUTCOMES)]


class NodeClient:
    """JSON over HTTP to the node; waits and tries again when it says so (429, 503)."""

    def __init__(
        self, base: str, context: ssl.SSLContext | None = None, attempts: int = 10
    ) -> None:
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"the node's address must be http:// or https://, not {base!r}")
        self.base = base.rstrip("/")
        self.context = context
        self.attempts = attempts

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
                self.base + path,
                data=data,
                method=method,
                headers={"content-type": "application/json", **(headers or {})},
            )
            try:
                with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked above
                    request, timeout=90, context=self.context
                ) as answer:
                    result: dict[str, Any] = json.loads(answer.read())
                    return result
            except urllib.error.HTTPError as error:
                problem = error.read().decode("utf-8", "replace")
                if error.code not in RETRYABLE or attempt == self.attempts:
                    raise NodeRefused(f"{method} {path}: {error.code} {problem}") from None
                time.sleep(float(error.headers.get("Retry-After", "1")))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == self.attempts:
                    raise
                time.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")


class CaseFile:
    """The case system's own store: one row per signal received, and whether it was answered."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS cases (message_id TEXT PRIMARY KEY, signal TEXT, "
            "signal_id TEXT, legal_basis TEXT, received_at TEXT, fields TEXT, outcome TEXT, "
            "answered INTEGER DEFAULT 0)"
        )

    def store(self, delivery: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO cases "
                "(message_id, signal, signal_id, legal_basis, received_at, fields) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    delivery["message_id"],
                    delivery["signal"],
                    delivery["fields"].get("signal_id"),
                    delivery["legal_basis"],
                    datetime.now(UTC).isoformat(),
                    json.dumps(delivery["fields"], sort_keys=True),
                ),
            )

    def answered(self, message_id: str, outcome: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE cases SET answered = 1, outcome = ? WHERE message_id = ?",
                (outcome, message_id),
            )

    def count(self, answered: bool | None = None) -> int:
        query = "SELECT count(*) FROM cases"
        if answered is not None:
            query += f" WHERE answered = {int(answered)}"
        return int(self.db.execute(query).fetchone()[0])

    def close(self) -> None:
        self.db.close()


@dataclass
class Summary:
    received: int = 0
    answered: int = 0
    refused: int = 0
    repeated: int = 0


def answer(
    node: NodeClient, cases: CaseFile, delivery: dict[str, Any], municipality: str, now: datetime
) -> str:
    """Store the signal, publish its outcome; returns the outcome's status at the node."""
    cases.store(delivery)
    signal_id = delivery["fields"]["signal_id"]
    outcome = outcome_for(signal_id)
    record = {
        "signal_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sigex:outcome:{delivery['message_id']}")),
        "detected_at": now.isoformat(),
        "in_reply_to": signal_id,
        "municipality": municipality,
        "outcome": outcome,
        "concluded_on": now.date().isoformat(),
    }
    published = node.call(
        "POST",
        f"/v1/signals/{OUTCOME_SIGNAL}",
        {"purpose": OUTCOME_PURPOSE, "record": record},
        {"Idempotency-Key": f"outcome-{delivery['message_id']}"},
    )
    status = str(published["results"][0]["status"])
    cases.answered(delivery["message_id"], outcome)
    return status


def run(
    node: NodeClient,
    cases: CaseFile,
    municipality: str,
    *,
    until_idle: float | None = None,
    now: datetime | None = None,
    wait: float = 5.0,
) -> Summary:
    """Take, store, answer and acknowledge signals; return after ``until_idle`` s with none."""
    summary = Summary()
    idle_since = time.monotonic()
    while until_idle is None or time.monotonic() - idle_since < until_idle:
        taken = node.call("GET", f"/v1/deliveries?max=100&wait={wait:g}")
        deliveries = taken["deliveries"]
        if not deliveries:
            continue
        idle_since = time.monotonic()
        before = cases.count()
        for delivery in deliveries:
            if delivery["signal"] != SIGNAL:  # e.g. a BSN mismatch: on file, nothing to answer
                cases.store(delivery)
                continue
            status = answer(node, cases, delivery, municipality, now or datetime.now(UTC))
            summary.answered += status == "published"
            summary.refused += status == "refused"
        summary.received += cases.count() - before
        summary.repeated += len(deliveries) - (cases.count() - before)
        node.call(
            "POST", "/v1/deliveries/ack", {"message_ids": [d["message_id"] for d in deliveries]}
        )
    return summary


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if ca is None:
        return None
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", required=True, help="The node's address, e.g. http://…:8470")
    parser.add_argument("--municipality", required=True, help="Our CBS code, e.g. GM0363")
    parser.add_argument("--cases", default="cases.sqlite", help="The case file (SQLite)")
    parser.add_argument("--until-idle", type=float, default=None, help="Stop after N s idle")
    parser.add_argument("--ca", help="The CA of the node's certificate (https)")
    parser.add_argument("--cert", help="Our client certificate (mutual TLS)")
    parser.add_argument("--key", help="Our client key")
    args = parser.parse_args(argv)
    node = NodeClient(args.node, tls_context(args.ca, args.cert, args.key))
    cases = CaseFile(args.cases)
    try:
        summary = run(node, cases, args.municipality, until_idle=args.until_idle)
    except KeyboardInterrupt:
        return 130
    except NodeRefused as refused:
        print(f"case system: {refused}", file=sys.stderr)
        return 1
    finally:
        cases.close()
    print(
        f"case system {args.municipality}: {summary.received} signals received, "
        f"{summary.answered} answered, {summary.refused} answers refused, "
        f"{summary.repeated} offered again",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
