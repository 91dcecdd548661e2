"""A witness of the access log: co-sign a checkpoint only if it extends what was co-signed.

One witness per party (``sigex audit witness --as PARTY``, or the party's node). For
each new checkpoint of the log it

1. checks the log's own signature and origin (junk is refused, not alarmed about);
2. checks, with a consistency proof (RFC 9162), that the new tree extends the last tree
   it co-signed;
3. only then records the new checkpoint as its last (durably, before anything else, so
   that a crash can never let it co-sign two histories) and co-signs it
   (:mod:`sigex.audit.cosignature`).

A checkpoint that cannot extend the last one is an **alarm**, kept as evidence in the
witness's own folder: both signed checkpoints, the proof the log gave (if any), and
what is wrong. Two checkpoints of one size with different roots need nothing else to
prove the log lied (a split view); for other conflicts anyone holding the log can
recompute the tree at both sizes and see which history it no longer matches.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.checkpoint import Checkpoint, TrustedKeys
from sigex.audit.cosignature import Cosignature, cosign
from sigex.audit.errors import AccessLogError, CheckpointError, WitnessError
from sigex.clock import Clock
from sigex.exchange.access_record import format_time, parse_time
from sigex.identity import load_party
from sigex.logs import get_logger
from sigex.merkle import verify_consistency

_log = get_logger(__name__)


class AlarmKind(StrEnum):
    #: two checkpoints of the same size with different roots, both signed by the log
    SPLIT_VIEW = "SPLIT_VIEW"
    #: a larger checkpoint whose consistency proof from the last co-signed one fails
    INCONSISTENT = "INCONSISTENT"
    #: a smaller checkpoint than the last co-signed one, not proven to be a prefix of it
    ROLLBACK = "ROLLBACK"


_EXPLANATIONS = {
    AlarmKind.SPLIT_VIEW: (
        "the log signed two different trees of the same size: it shows different "
        "histories to different parties"
    ),
    AlarmKind.INCONSISTENT: (
        "the log signed a larger tree that does not extend the one this witness co-signed: "
        "records already co-signed were changed, dropped or reordered"
    ),
    AlarmKind.ROLLBACK: (
        "the log signed a smaller tree after a larger one and cannot prove it is a prefix "
        "of it: the log was rolled back"
    ),
}


@dataclass(frozen=True, slots=True)
class Alarm:
    """Evidence that the log signed two checkpoints that cannot both be true."""

    kind: AlarmKind
    witness: str
    detected_at: datetime
    earlier: Checkpoint
    later: Checkpoint
    proof: tuple[bytes, ...] | None

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "witness": self.witness,
            "detected_at": format_time(self.detected_at),
            "explanation": self.explanation,
            "earlier": self.earlier.to_dict(),
            "later": self.later.to_dict(),
            "proof": None if self.proof is None else [p.hex() for p in self.proof],
        }

    @classmethod
    def from_dict(cls, values: Any) -> Alarm:
        try:
            proof = values["proof"]
            return cls(
                kind=AlarmKind(values["kind"]),
                witness=str(values["witness"]),
                detected_at=parse_time(str(values["detected_at"]), "detected_at"),
                earlier=Checkpoint.from_dict(values["earlier"]),
                later=Checkpoint.from_dict(values["later"]),
                proof=None if proof is None else tuple(bytes.fromhex(p) for p in proof),
            )
        except (KeyError, TypeError, ValueError, AttributeError, AccessLogError):
            raise CheckpointError("witness alarm: not in the alarm format") from None


def check_evidence(alarm: Alarm, log_keys: TrustedKeys) -> str | None:
    """Why ``alarm`` does not prove anything (None: the log signed both, and they conflict).

    Both checkpoints must be the log's, of its origin. A split view proves itself. For
    the other kinds the proof the log gave must fail (an auditor then checks the log's
    tree at both sizes, which ``sigex audit verify --alarms`` does).
    """
    earlier, later = alarm.earlier, alarm.later
    if not (earlier.verify(log_keys) and later.verify(log_keys)):
        return "the log's key did not sign both checkpoints"
    if earlier.origin != later.origin:
        return "the checkpoints are of different logs"
    if alarm.kind is AlarmKind.SPLIT_VIEW:
        split = earlier.tree_size == later.tree_size and earlier.root != later.root
        return None if split else "not two different trees of one size"
    return _unproven_conflict(earlier, later, alarm.proof)


def _unproven_conflict(
    earlier: Checkpoint, later: Checkpoint, proof: Sequence[bytes] | None
) -> str | None:
    small, large = sorted((earlier, later), key=lambda c: c.tree_size)
    if small.tree_size == large.tree_size:
        return "two checkpoints of one size are a split view or the same tree"
    if proof is not None and verify_consistency(
        small.tree_size, large.tree_size, small.root, large.root, proof
    ):
        return "the log's proof shows the two trees are consistent"
    return None


class WitnessAlarm(AccessLogError):
    """The witness refused a checkpoint because it conflicts with one it co-signed."""

    def __init__(self, alarm: Alarm, evidence: Path, *, repeated: bool = False) -> None:
        again = " again" if repeated else ""
        super().__init__(f"{alarm.kind.value}{again}: {alarm.explanation} (evidence in {evidence})")
        self.alarm = alarm
        self.evidence = evidence
        #: the same conflict was shown before: its evidence is kept and was published
        self.repeated = repeated


class Witness:
    """One party's witness of one log; its state lives in ``folder``."""

    def __init__(
        self,
        *,
        party: str,
        signing_key: Ed25519PrivateKey,
        log_keys: TrustedKeys,
        origin: str,
        folder: Path,
        clock: Clock,
    ) -> None:
        self.party = party
        self._signing_key = signing_key
        self._log_keys = log_keys
        self._origin = origin
        self._folder = folder
        self._clock = clock
        self._last = self._read_last()

    @classmethod
    def for_party(
        cls, state_dir: Path, party: str, *, origin: str, log_keys: TrustedKeys, clock: Clock
    ) -> Witness:
        """``party``'s witness with its federation signing key, remembering in
        ``<state>/witness/<party>``."""
        return cls(
            party=party,
            signing_key=load_party(state_dir, party).signing_key,
            log_keys=log_keys,
            origin=origin,
            folder=state_dir / "witness" / party,
            clock=clock,
        )

    @property
    def last(self) -> Checkpoint | None:
        """The last checkpoint this witness co-signed (None before the first)."""
        return self._last

    @property
    def state_file(self) -> Path:
        return self._folder / "last-checkpoint.json"

    @property
    def alarm_folder(self) -> Path:
        return self._folder / "alarms"

    def proof_span(self, checkpoint: Checkpoint) -> tuple[int, int] | None:
        """(old, new) sizes of the consistency proof ``observe`` needs, or None for none."""
        last = self._last
        if last is None or last.tree_size == checkpoint.tree_size:
            return None
        return min(last.tree_size, checkpoint.tree_size), max(last.tree_size, checkpoint.tree_size)

    def observe(self, checkpoint: Checkpoint, proof: Sequence[bytes] | None) -> Cosignature:
        """Co-sign ``checkpoint`` if it extends the last co-signed one (``proof`` spans
        :meth:`proof_span`; None: the log gave none). Raises :class:`WitnessAlarm` on a
        conflict, :class:`WitnessError` for anything that proves nothing."""
        if not checkpoint.is_note or checkpoint.origin != self._origin:
            raise WitnessError(f"not a checkpoint of {self._origin}")
        if not checkpoint.verify(self._log_keys):
            raise WitnessError("the checkpoint is not signed by the log's key")
        with self._exclusive():
            # another process on this folder may have co-signed since: judge by the file
            last = self._last = self._read_last()
            if last is not None:
                self._check_extends(last, checkpoint, proof)
            if last is None or checkpoint.tree_size > last.tree_size:
                self._write_last(checkpoint)
            return cosign(checkpoint, self.party, self._signing_key, self._clock.now())

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One witness process at a time on this folder (two could co-sign two histories)."""
        self._folder.mkdir(parents=True, exist_ok=True)
        with (self._folder / "lock").open("a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WitnessError(
                    f"another witness process holds {self._folder}; one process per party"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _check_extends(
        self, last: Checkpoint, new: Checkpoint, proof: Sequence[bytes] | None
    ) -> None:
        if new.tree_size == last.tree_size:
            if new.root != last.root:
                self._alarm(AlarmKind.SPLIT_VIEW, last, new, None)
            return
        if new.tree_size > last.tree_size:
            if proof is None:
                raise WitnessError("the log gave no consistency proof; not co-signed")
            if not verify_consistency(last.tree_size, new.tree_size, last.root, new.root, proof):
                self._alarm(AlarmKind.INCONSISTENT, last, new, proof)
            return
        if proof is None or not verify_consistency(
            new.tree_size, last.tree_size, new.root, last.root, proof
        ):
            self._alarm(AlarmKind.ROLLBACK, last, new, proof)
        raise WitnessError(
            f"an older checkpoint ({new.tree_size} records) than the last co-signed "
            f"({last.tree_size}); not co-signed again"
        )

    def _alarm(
        self,
        kind: AlarmKind,
        earlier: Checkpoint,
        later: Checkpoint,
        proof: Sequence[bytes] | None,
    ) -> None:
        alarm = Alarm(
            kind,
            self.party,
            self._clock.now(),
            earlier,
            later,
            None if proof is None else tuple(proof),
        )
        kept = self._kept_evidence(alarm)
        if kept is not None:  # the same conflict shown again: one piece of evidence
            raise WitnessAlarm(alarm, kept, repeated=True)
        self.alarm_folder.mkdir(parents=True, exist_ok=True)
        stamp = format_time(alarm.detected_at).replace(":", "").replace(".", "-")
        evidence = self.alarm_folder / f"{stamp}-{kind.value.lower()}.json"
        _write_durably(evidence, json.dumps(alarm.to_dict(), indent=2, sort_keys=True))
        _log.error(
            "witness.alarm",
            party=self.party,
            kind=kind.value,
            earlier_size=earlier.tree_size,
            later_size=later.tree_size,
        )
        raise WitnessAlarm(alarm, evidence)

    def _kept_evidence(self, alarm: Alarm) -> Path | None:
        """The evidence file already kept for the same two checkpoints, if any."""
        if not self.alarm_folder.is_dir():
            return None
        for path in sorted(self.alarm_folder.glob("*.json")):
            try:
                kept = Alarm.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, CheckpointError):
                continue
            if (kept.kind, kept.earlier, kept.later) == (alarm.kind, alarm.earlier, alarm.later):
                return path
        return None

    def alarms(self) -> list[Alarm]:
        """The alarms this witness raised, oldest first."""
        if not self.alarm_folder.is_dir():
            return []
        found = []
        for path in sorted(self.alarm_folder.glob("*.json")):
            found.append(Alarm.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        return found

    def _read_last(self) -> Checkpoint | None:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise WitnessError(f"witness state {self.state_file}: cannot read it") from error
        try:
            values = json.loads(text)
            if not isinstance(values, dict):
                raise CheckpointError("not a checkpoint")
            return Checkpoint.from_dict(values)
        except (ValueError, CheckpointError):
            # never start afresh silently: that would let the log show another history
            raise WitnessError(
                f"witness state {self.state_file} is damaged; restore it from a backup"
                " (starting without it would accept any history)"
            ) from None

    def _write_last(self, checkpoint: Checkpoint) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        _write_durably(self.state_file, json.dumps(checkpoint.to_dict(), sort_keys=True))
        self._last = checkpoint


def _write_durably(path: Path, text: str) -> None:
    """Write whole, flush to disk, then rename into place (a crash leaves old or new); the
    folder and its parent are flushed too, so a new folder does not vanish on power loss."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    for folder in (path.parent, path.parent.parent):
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
