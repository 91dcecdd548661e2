"""What the witnesses say of a log: which checkpoint they vouch for, and any alarm.

``sigex audit verify`` adds this to its check of the log against its own checkpoints:

- the **latest witnessed checkpoint**: the checkpoint of the largest tree whose
  cosignatures meet the witness policy. An auditor trusts the log up to there against a
  split view or a rewrite, not only its operator's signature;
- **alarms** the witnesses raised (their evidence files): each is checked to be the log's
  own signatures on two conflicting checkpoints, and compared with the log as it is now,
  which can match at most one of the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sigex.audit.checkpoint import Checkpoint, TrustedKeys
from sigex.audit.errors import AccessLogError, CheckpointError
from sigex.audit.store import AccessLogStore
from sigex.audit.witness import Alarm, AlarmKind, check_evidence
from sigex.audit.witness_policy import Witnessing, WitnessVerdict

#: how many of the newest checkpoints are searched for the latest witnessed one
SEARCHED = 256


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    checkpoint: Checkpoint
    verdict: WitnessVerdict


@dataclass(frozen=True, slots=True)
class CheckedAlarm:
    alarm: Alarm
    #: the evidence file, or the topic it was read from
    source: str
    #: None: the evidence proves the log signed two conflicting checkpoints; else why not
    unproven: str | None
    #: which of the two the log matches now ("earlier", "later", or "neither")
    log_matches: str


@dataclass(frozen=True, slots=True)
class WitnessReport:
    latest: WitnessedCheckpoint | None
    witnessed: WitnessedCheckpoint | None
    tree_size: int
    alarms: tuple[CheckedAlarm, ...] = field(default=())

    @property
    def proven_alarms(self) -> tuple[CheckedAlarm, ...]:
        return tuple(a for a in self.alarms if a.unproven is None)

    def problems(self, *, require_witnessed: bool) -> list[str]:
        found = [
            f"ALARM by {a.alarm.witness} ({a.alarm.kind.value}): {a.alarm.explanation}; "
            f"the log now matches the {a.log_matches} checkpoint (evidence: {a.source})"
            for a in self.proven_alarms
        ]
        if require_witnessed and self.witnessed is None and self.tree_size > 0:
            found.append(
                "no checkpoint has the co-signatures the witness policy needs "
                + (f"({self.latest.verdict.summary()})" if self.latest else "(none is C2SP)")
            )
        return found

    def lines(self) -> list[str]:
        out = []
        if self.witnessed is not None:
            checkpoint, verdict = self.witnessed.checkpoint, self.witnessed.verdict
            out.append(
                f"witnessed: the checkpoint at {checkpoint.tree_size} records; {verdict.summary()}"
            )
            beyond = self.tree_size - checkpoint.tree_size
            if beyond > 0:
                out.append(f"  {beyond} newer record(s) are not witnessed yet")
        if self.latest is not None and self.latest != self.witnessed:
            out.append(
                f"latest checkpoint ({self.latest.checkpoint.tree_size} records): "
                f"{self.latest.verdict.summary()}"
            )
        for checked in self.alarms:
            if checked.unproven is not None:
                out.append(f"  alarm in {checked.source} proves nothing: {checked.unproven}")
        return out


def read_alarms(folders: Iterable[Path]) -> list[tuple[str, Alarm]]:
    """Alarm evidence files: the given files, and the ``alarms/*.json`` of the given folders
    (a witness's ``alarms`` folder, its own folder, or a folder of several witnesses)."""
    found = []
    for folder in folders:
        if folder.is_file():
            paths = [folder]
        elif folder.name == "alarms":
            paths = sorted(folder.glob("*.json"))
        else:
            paths = sorted(folder.rglob("alarms/*.json"))
        for path in paths:
            try:
                found.append((str(path), Alarm.from_dict(json.loads(path.read_text("utf-8")))))
            except (OSError, ValueError, CheckpointError) as error:
                raise AccessLogError(f"witness alarm {path}: cannot read it ({error})") from None
    return found


def check_witnesses(
    store: AccessLogStore,
    witnessing: Witnessing,
    log_keys: TrustedKeys,
    alarms: Sequence[tuple[str, Alarm]] = (),
) -> WitnessReport:
    """The latest witnessed checkpoint of ``store``, and the alarms checked against it."""
    size = store.size()
    latest: WitnessedCheckpoint | None = None
    witnessed: WitnessedCheckpoint | None = None
    for checkpoint in reversed(store.recent_checkpoints(SEARCHED)):
        if not checkpoint.is_note or not checkpoint.verify(log_keys):
            continue
        verdict = witnessing.verdict(checkpoint, store.cosignatures(checkpoint))
        judged = WitnessedCheckpoint(checkpoint, verdict)
        latest = latest or judged
        if verdict.met:
            witnessed = judged
            break
    checked = tuple(_checked(store, size, alarm, source, log_keys) for source, alarm in alarms)
    return WitnessReport(latest, witnessed, size, checked)


def _checked(
    store: AccessLogStore, size: int, alarm: Alarm, source: str, log_keys: TrustedKeys
) -> CheckedAlarm:
    """An alarm judged by its evidence and by the log: anyone may publish an alarm (its
    proof is unsigned), so a rollback or inconsistency counts only if the log itself
    cannot hold both trees."""
    unproven = check_evidence(alarm, log_keys)
    matches = _matches(store, size, alarm)
    if unproven is None and alarm.kind is not AlarmKind.SPLIT_VIEW and " and " in matches:
        unproven = "the log holds both trees, so they are consistent"
    return CheckedAlarm(alarm, source, unproven, matches)


def _matches(store: AccessLogStore, size: int, alarm: Alarm) -> str:
    matching = [
        name
        for name, checkpoint in (("earlier", alarm.earlier), ("later", alarm.later))
        if checkpoint.tree_size <= size and store.root(checkpoint.tree_size) == checkpoint.root
    ]
    return " and ".join(matching) or "neither"
