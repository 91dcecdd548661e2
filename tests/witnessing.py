"""Test helper: the witness policy's witnesses co-sign a log's latest checkpoint.

They use the real :class:`~sigex.audit.witness.Witness` with their federation keys, and
their cosignatures go into the store as the audit API would put them there; only the
HTTPS hop of ``sigex audit witness`` is left out.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from sigex.audit.checkpoint import audit_keys
from sigex.audit.cosignature import Cosignature
from sigex.audit.store import AccessLogStore
from sigex.audit.witness import Witness
from sigex.audit.witness_policy import load_witness_policy
from sigex.clock import SystemClock
from sigex.identity.federation import load_directory, load_party
from sigex.roles import Role


def witness_latest(state: Path, db: str, parties: Sequence[str] | None = None) -> list[Cosignature]:
    """``parties`` (default: every policy witness) check and co-sign the latest checkpoint.

    Each witness remembers what it co-signed of this log (a folder per log under
    ``<state>/witness``), so tests sharing one federation do not mix their logs.
    """
    folder = state / "witness" / hashlib.sha256(db.encode()).hexdigest()[:12]
    policy = load_witness_policy()
    log_keys = audit_keys(load_directory(state).party(Role.AUDIT))
    added = []
    with AccessLogStore.open(db) as store:
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None, "nothing to witness: the log has no checkpoint"
        for party in parties or policy.witnesses:
            witness = Witness(
                party=party,
                signing_key=load_party(state, party).signing_key,
                log_keys=log_keys,
                origin=policy.origin,
                folder=folder / party,  # per log: tests share one federation
                clock=SystemClock(),
            )
            span = witness.proof_span(checkpoint)
            proof = store.consistency_proof(*span) if span else []
            cosignature = witness.observe(checkpoint, proof)
            store.add_cosignature(checkpoint, cosignature)
            added.append(cosignature)
    return added


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a whole SQLite database, as an operator's backup or restore does (WAL included)."""
    reading, writing = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reading.backup(writing)
    finally:
        reading.close()
        writing.close()
