"""The log's health as the console shows it: signed checkpoints over time, and the last verify.

For the latest checkpoints the console shows whether each is signed by a
trusted audit key and whether each is consistent with the one before it (an
RFC 9162 consistency proof, built from the store and checked here). The last
full verification (``sigex audit verify``, or the console's "verify now") is
kept as a small JSON file beside the log's state, so the page can say when the
whole log was last read through and what was found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sigex.audit.checkpoint import Checkpoint, TrustedKeys
from sigex.audit.errors import AccessLogError
from sigex.audit.store import AccessLogStore
from sigex.audit.verify import VerificationReport
from sigex.audit.witness_check import WitnessReport
from sigex.exchange.access_record import format_time, parse_time
from sigex.merkle import verify_consistency

RECENT_CHECKPOINTS = 30
VERIFICATION_FILE = "last-verification.json"


@dataclass(frozen=True, slots=True)
class CheckpointHealth:
    checkpoint: Checkpoint
    signed: bool | None  # None: no audit key to check against
    consistent_with_previous: bool | None  # None: the first one shown


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a full verification, as kept on disk."""

    at: datetime
    ok: bool
    tree_size: int
    summary: str
    findings: tuple[str, ...]

    @classmethod
    def of(cls, report: VerificationReport, at: datetime) -> Verification:
        return cls(
            at=at,
            ok=report.ok,
            tree_size=report.tree_size,
            summary=report.summary(),
            findings=tuple(f"{f.where}: {f.problem}" for f in report.findings[:50]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "ok": self.ok,
            "tree_size": self.tree_size,
            "summary": self.summary,
            "findings": list(self.findings),
        }


@dataclass(frozen=True, slots=True)
class LogHealth:
    tree_size: int
    checkpoint_count: int
    checkpoints: tuple[CheckpointHealth, ...]
    uncovered: int
    last_verification: Verification | None
    #: what the witnesses vouch for (None: no witness policy or no audit key to judge by)
    witnesses: WitnessReport | None = None


def check_checkpoints(
    store: AccessLogStore, checkpoints: Sequence[Checkpoint], trusted: TrustedKeys | None
) -> tuple[CheckpointHealth, ...]:
    checked: list[CheckpointHealth] = []
    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        signed = None if trusted is None else checkpoint.verify(trusted)
        consistent: bool | None = None
        if previous is not None:
            try:
                proof = store.consistency_proof(previous.tree_size, checkpoint.tree_size)
                consistent = verify_consistency(
                    previous.tree_size, checkpoint.tree_size, previous.root, checkpoint.root, proof
                )
            except AccessLogError:
                consistent = False
        checked.append(CheckpointHealth(checkpoint, signed, consistent))
        previous = checkpoint
    return tuple(checked)


def log_health(
    store: AccessLogStore, trusted: TrustedKeys | None, verification_file: Path
) -> LogHealth:
    size = store.size()
    recent = store.recent_checkpoints(RECENT_CHECKPOINTS)
    latest = recent[-1].tree_size if recent else 0
    return LogHealth(
        tree_size=size,
        checkpoint_count=store.checkpoint_count(),
        checkpoints=check_checkpoints(store, recent, trusted),
        uncovered=max(size - latest, 0),
        last_verification=read_verification(verification_file),
    )


def save_verification(path: Path, verification: Verification) -> Verification:
    """Keep ``verification`` as the last one (written whole, then renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(verification.to_dict(), sort_keys=True), encoding="utf-8")
    os.replace(partial, path)
    return verification


def read_verification(path: Path) -> Verification | None:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return Verification(
            at=parse_time(str(values["at"]), "at"),
            ok=bool(values["ok"]),
            tree_size=int(values["tree_size"]),
            summary=str(values["summary"]),
            findings=tuple(str(f) for f in values["findings"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AccessLogError):
        return None
