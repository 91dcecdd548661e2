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

When the payroll file is given too, every hire is then checked against the
uitlener's own payroll administration: a worker for whom the uitlener filed
in none of the months of the hire is *missing*. For every uitlener with
missing workers the finder yields one ``WORKERS_MISSING_FROM_ADMINISTRATION``
record (inlener fields null). That check sorts the hires by worker to
merge-join them with payroll, and the missing ones back by uitlener, both
through an external sort, so memory stays bounded here too.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from sigex.clock import Clock
from sigex.partners.producers.external_sort import ExternalSorter, Row
from sigex.partners.producers.files import (
    Admission,
    Hire,
    HiresFile,
    PayrollFile,
    PayrollHistory,
    RegisterFile,
)
from sigex.partners.producers.stamps import (
    Progress,
    ProgressCallback,
    SignalRecord,
    SignalStamper,
    ignore_progress,
)

FINDER_NAME = "admission"

#: Rows an external sort of hires holds in memory before it spills a sorted run to disk.
SORT_RUN_ROWS = 20_000

LENDING_WITHOUT_ADMISSION = "LENDING_WITHOUT_ADMISSION"
HIRING_FROM_NON_ADMITTED = "HIRING_FROM_NON_ADMITTED"
WORKERS_MISSING_FROM_ADMINISTRATION = "WORKERS_MISSING_FROM_ADMINISTRATION"

#: The suspected offence named in each kind of record (criminal-data classification).
SUSPECTED_OFFENCES = {
    LENDING_WITHOUT_ADMISSION: "making workers available without admission (Waadi, admission duty)",
    HIRING_FROM_NON_ADMITTED: "hiring workers from a non-admitted uitlener (Waadi, admission duty)",
    WORKERS_MISSING_FROM_ADMINISTRATION: (
        "lending workers who are missing from its payroll administration"
    ),
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
        last_day = hire.hire_end if hire.hire_end is not None else max(observed_on, hire.hire_start)
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


def _month(day: date) -> date:
    return day.replace(day=1)


def _hire_of(row: Row) -> Hire:
    """A hire from a by-worker row; its ``hire_end`` is the last day observed."""
    return Hire(
        uitlener_kvk=row[1],
        uitlener_loonheffingennummer=row[2],
        inlener_kvk=row[3],
        inlener_loonheffingennummer=row[4],
        worker_bsn=row[0],
        hire_start=date.fromisoformat(row[5]),
        hire_end=date.fromisoformat(row[6]),
    )


def _missing_hires(by_worker: Iterator[Row], payroll: PayrollFile) -> Iterator[Row]:
    """Hires (sorted by worker) with no filing by their uitlener in any month of the hire."""
    groups = iter(payroll)
    group: PayrollHistory | None = next(groups, None)
    for row in by_worker:
        bsn = row[0]
        while group is not None and group.bsn < bsn:
            group = next(groups, None)
        filings = group.filings if group is not None and group.bsn == bsn else ()
        first_month = _month(date.fromisoformat(row[5]))
        last_month = _month(date.fromisoformat(row[6]))
        if not any(
            f.employer_kvk == row[1] and first_month <= f.payroll_period <= last_month
            for f in filings
        ):
            yield row
    for _ in groups:  # read to the end, so a malformed tail is still reported
        pass


class _Tally:
    """Counts rows read and signals found, and reports progress every so many rows."""

    def __init__(
        self, progress: ProgressCallback, every: int, sources: tuple[_RowCounter, ...]
    ) -> None:
        self._progress = progress
        self._every = every
        self._next = every
        self._sources = sources
        self.found = 0

    def rows_read(self) -> int:
        return sum(source.rows_read for source in self._sources)

    def tick(self) -> None:
        rows = self.rows_read()
        if rows >= self._next:
            self._progress(Progress(FINDER_NAME, rows, self.found, finished=False))
            self._next = rows + self._every

    def finish(self) -> None:
        self._progress(Progress(FINDER_NAME, self.rows_read(), self.found, finished=True))


class _RowCounter(Protocol):
    @property
    def rows_read(self) -> int: ...


def _by_worker_row(hire: Hire, last_day: date) -> Row:
    return (
        hire.worker_bsn,
        hire.uitlener_kvk,
        hire.uitlener_loonheffingennummer,
        hire.inlener_kvk,
        hire.inlener_loonheffingennummer,
        hire.hire_start.isoformat(),
        last_day.isoformat(),
    )


def _uncovered_hires(
    hires: HiresFile,
    admitted: AdmissionRegister,
    observed_on: date,
    by_worker: ExternalSorter | None,
    tally: _Tally,
) -> Iterator[tuple[str, _Violations]]:
    """Stream the hires; yield (kind, group) for uitleners and pairs with uncovered hires.

    Every hire also goes to ``by_worker`` (when given) for the payroll check.
    """
    uitlener: _Violations | None = None
    pair: _Violations | None = None
    current = ("", "")
    for hire in hires:
        tally.tick()
        new_uitlener = hire.uitlener_kvk != current[0]
        if pair is not None and (new_uitlener or hire.inlener_kvk != current[1]):
            yield HIRING_FROM_NON_ADMITTED, pair
            pair = None
        if uitlener is not None and new_uitlener:
            yield LENDING_WITHOUT_ADMISSION, uitlener
            uitlener = None
        current = (hire.uitlener_kvk, hire.inlener_kvk)
        # An open hire runs to the observation date (never before its own start).
        last_day = hire.hire_end if hire.hire_end is not None else max(observed_on, hire.hire_start)
        if by_worker is not None:
            by_worker.add(_by_worker_row(hire, last_day))
        if admitted.covers(hire, observed_on):
            continue
        pair = pair or _Violations(hire, set(), hire.hire_start, last_day)
        pair.add(hire, last_day)
        uitlener = uitlener or _Violations(hire, set(), hire.hire_start, last_day)
        uitlener.add(hire, last_day)
    if pair is not None:
        yield HIRING_FROM_NON_ADMITTED, pair
    if uitlener is not None:
        yield LENDING_WITHOUT_ADMISSION, uitlener


def _uitleners_missing_workers(
    by_worker: ExternalSorter,
    payroll: PayrollFile,
    work_directory: Path | None,
    tally: _Tally,
) -> Iterator[_Violations]:
    """Group the hires missing from their uitlener's payroll by uitlener."""
    missing = ExternalSorter(
        work_directory, key=lambda row: (row[1], row[3], row[0]), run_size=SORT_RUN_ROWS
    )
    for row in _missing_hires(by_worker.sorted_rows(), payroll):
        tally.tick()
        missing.add(row)
    group: _Violations | None = None
    for row in missing.sorted_rows():
        hire = _hire_of(row)
        last_day = hire.hire_end or hire.hire_start
        if group is not None and group.first.uitlener_kvk != hire.uitlener_kvk:
            yield group
            group = None
        group = group or _Violations(hire, set(), hire.hire_start, last_day)
        group.add(hire, last_day)
    if group is not None:
        yield group


def find_admission_violations(
    register: Path,
    hires: Path,
    *,
    clock: Clock,
    rng: random.Random,
    payroll: Path | None = None,
    observed_on: date | None = None,
    work_directory: Path | None = None,
    progress: ProgressCallback = ignore_progress,
    progress_every: int = 100_000,
) -> Iterator[SignalRecord]:
    """Compare the hires with the register and yield ``waadi.admission-violation`` records.

    Memory holds the register and the uncovered workers of one uitlener.
    ``observed_on`` (default: the clock's date) ends open hires. With
    ``payroll``, hires are also checked against the uitlener's payroll; the
    sorts for that spill to ``work_directory`` (default: the system's
    temporary directory). Raises :class:`~sigex.producers.errors.MalformedInput` on
    a malformed or unsorted file.
    """
    register_file = RegisterFile(register)
    admitted = AdmissionRegister(register_file)
    if observed_on is None:
        observed_on = clock.now().date()
    hires_file = HiresFile(hires)
    payroll_file = PayrollFile(payroll) if payroll is not None else None
    sources: tuple[_RowCounter, ...] = (register_file, hires_file)
    if payroll_file is not None:
        sources += (payroll_file,)
    tally = _Tally(progress, progress_every, sources)
    stamper = SignalStamper(clock, rng)

    def record(kind: str, group: _Violations) -> SignalRecord:
        with_inlener = kind == HIRING_FROM_NON_ADMITTED
        tally.found += 1
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

    by_worker = (
        ExternalSorter(
            work_directory,
            key=lambda row: (row[0], row[1], row[3], row[5]),
            run_size=SORT_RUN_ROWS,
        )
        if payroll_file is not None
        else None
    )
    for kind, group in _uncovered_hires(hires_file, admitted, observed_on, by_worker, tally):
        yield record(kind, group)
    if by_worker is not None and payroll_file is not None:
        for group in _uitleners_missing_workers(by_worker, payroll_file, work_directory, tally):
            yield record(WORKERS_MISSING_FROM_ADMINISTRATION, group)
    tally.finish()
