"""NLA's reference finder for admission violations (``waadi.admission-violation``).

The register of admitted uitleners is small and is read into memory; the
hires stream through once, sorted by uitlener, inlener and worker. A hire is
*covered* when one admission of its uitlener was in force on every day from
``hire_start`` to ``hire_end`` (an open hire runs to the observation date).
For every uitlener with an uncovered hire the finder yields:

- one ``HIRING_FROM_NON_ADMITTED`` record per inlener that hired uncovered
  workers from it (inlener fields set), then
- one ``LENDING_WITHOUT_ADMISSION`` record for the uitlener over all its
  inleners (inlener fields null).

``WORKERS_MISSING_FROM_ADMINISTRATION`` needs a join of hires with payroll and
is not produced by this reference finder.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType

from producers.reference.files import Admission, Hire, HiresFile, RegisterFile
from producers.reference.stamps import (
    Progress,
    ProgressCallback,
    SignalRecord,
    SignalStamper,
    ignore_progress,
)
from sigex.clock import Clock

FINDER_NAME = "admission"

LENDING_WITHOUT_ADMISSION = "LENDING_WITHOUT_ADMISSION"
HIRING_FROM_NON_ADMITTED = "HIRING_FROM_NON_ADMITTED"
WORKERS_MISSING_FROM_ADMINISTRATION = "WORKERS_MISSING_FROM_ADMINISTRATION"

#: The suspected offence named in each kind of record (criminal-data classification).
SUSPECTED_OFFENCES = {
    LENDING_WITHOUT_ADMISSION: "making workers available without admission (Waadi, admission duty)",
    HIRING_FROM_NON_ADMITTED: "hiring workers from a non-admitted uitlener (Waadi, admission duty)",
}


class AdmissionRegister:
    """The register of admitted uitleners, by KvK number, held in memory."""

    def __init__(self, admissions: Iterable[Admission]) -> None:
        by_kvk: defaultdict[str, list[Admission]] = defaultdict(list)
        for admission in admissions:
            by_kvk[admission.kvk].append(admission)
        self._admissions: Mapping[str, tuple[Admission, ...]] = MappingProxyType(
            {kvk: tuple(rows) for kvk, rows in by_kvk.items()}
        )

    @classmethod
    def read(cls, path: Path) -> AdmissionRegister:
        return cls(RegisterFile(path))

    def __len__(self) -> int:
        return len(self._admissions)

    def covers(self, hire: Hire, observed_on: date) -> bool:
        last_day = hire.hire_end if hire.hire_end is not None else observed_on
        return any(
            a.covers(hire.hire_start, last_day) for a in self._admissions.get(hire.uitlener_kvk, ())
        )


@dataclass(slots=True)
class _Violations:
    """Uncovered hires of one uitlener (or one uitlener-inlener pair) seen so far."""

    first: Hire
    workers: set[str]
    observed_from: date
    observed_to: date

    def add(self, hire: Hire, last_day: date) -> None:
        self.workers.add(hire.worker_bsn)
        self.observed_from = min(self.observed_from, hire.hire_start)
        self.observed_to = max(self.observed_to, last_day)


def find_admission_violations(
    register: Path,
    hires: Path,
    *,
    clock: Clock,
    rng: random.Random,
    observed_on: date | None = None,
    progress: ProgressCallback = ignore_progress,
    progress_every: int = 100_000,
) -> Iterator[SignalRecord]:
    """Compare the hires with the register and yield ``waadi.admission-violation`` records.

    Memory holds the register and the uncovered workers of one uitlener.
    ``observed_on`` (default: the clock's date) ends open hires. Raises
    :class:`~producers.errors.MalformedInput` on a malformed or unsorted file.
    """
    register_file = RegisterFile(register)
    admitted = AdmissionRegister(register_file)
    if observed_on is None:
        observed_on = clock.now().date()
    hires_file = HiresFile(hires)
    register_rows = register_file.rows_read
    stamper = SignalStamper(clock, rng)
    found = 0
    next_report = progress_every

    def record(kind: str, group: _Violations, with_inlener: bool) -> SignalRecord:
        return {
            "signal_id": stamper.new_signal_id(),
            "detected_at": stamper.detected_at(),
            "kind": kind,
            "uitlener_kvk": group.first.uitlener_kvk,
            "uitlener_loonheffingennummer": group.first.uitlener_loonheffingennummer,
            "inlener_kvk": group.first.inlener_kvk if with_inlener else None,
            "inlener_loonheffingennummer": (
                group.first.inlener_loonheffingennummer if with_inlener else None
            ),
            "worker_count": len(group.workers),
            "worker_bsns": sorted(group.workers),
            "observed_from": group.observed_from,
            "observed_to": group.observed_to,
            "suspected_offence": SUSPECTED_OFFENCES[kind],
        }

    uitlener: _Violations | None = None
    pair: _Violations | None = None
    current_uitlener = ""
    current_inlener = ""
    for hire in hires_file:
        if hires_file.rows_read >= next_report:
            progress(
                Progress(FINDER_NAME, register_rows + hires_file.rows_read, found, finished=False)
            )
            next_report = hires_file.rows_read + progress_every
        new_uitlener = hire.uitlener_kvk != current_uitlener
        if pair is not None and (new_uitlener or hire.inlener_kvk != current_inlener):
            found += 1
            yield record(HIRING_FROM_NON_ADMITTED, pair, with_inlener=True)
            pair = None
        if uitlener is not None and new_uitlener:
            found += 1
            yield record(LENDING_WITHOUT_ADMISSION, uitlener, with_inlener=False)
            uitlener = None
        current_uitlener, current_inlener = hire.uitlener_kvk, hire.inlener_kvk
        if admitted.covers(hire, observed_on):
            continue
        last_day = hire.hire_end if hire.hire_end is not None else observed_on
        if pair is None:
            pair = _Violations(hire, set(), hire.hire_start, last_day)
        pair.add(hire, last_day)
        if uitlener is None:
            uitlener = _Violations(hire, set(), hire.hire_start, last_day)
        uitlener.add(hire, last_day)
    if pair is not None:
        found += 1
        yield record(HIRING_FROM_NON_ADMITTED, pair, with_inlener=True)
    if uitlener is not None:
        found += 1
        yield record(LENDING_WITHOUT_ADMISSION, uitlener, with_inlener=False)
    progress(Progress(FINDER_NAME, register_rows + hires_file.rows_read, found, finished=True))
