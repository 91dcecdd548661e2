"""The reference finders by name: which signal each finds, who sends it and which files it reads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from sigex.clock import Clock
from sigex.partners.producers.admission import find_admission_violations
from sigex.partners.producers.bsn_mismatch import find_bsn_mismatches
from sigex.partners.producers.files import (
    ADDRESSES,
    HIRES,
    PAYROLL,
    PERSONS,
    REGISTER,
    FileLayout,
    dataset_file,
)
from sigex.partners.producers.frequent_movers import find_frequent_movers
from sigex.partners.producers.stamps import ProgressCallback, SignalRecord, ignore_progress

#: A finder run over a dataset directory.
FindInDataset = Callable[[Path, Clock, random.Random, ProgressCallback], Iterator[SignalRecord]]


def _frequent_movers(
    dataset: Path, clock: Clock, rng: random.Random, progress: ProgressCallback
) -> Iterator[SignalRecord]:
    return find_frequent_movers(
        dataset_file(dataset, ADDRESSES), clock=clock, rng=rng, progress=progress
    )


def _bsn_mismatches(
    dataset: Path, clock: Clock, rng: random.Random, progress: ProgressCallback
) -> Iterator[SignalRecord]:
    return find_bsn_mismatches(
        dataset_file(dataset, PERSONS),
        dataset_file(dataset, ADDRESSES),
        dataset_file(dataset, PAYROLL),
        clock=clock,
        rng=rng,
        progress=progress,
    )


def _admission_violations(
    dataset: Path, clock: Clock, rng: random.Random, progress: ProgressCallback
) -> Iterator[SignalRecord]:
    return find_admission_violations(
        dataset_file(dataset, REGISTER),
        dataset_file(dataset, HIRES),
        payroll=dataset_file(dataset, PAYROLL),
        clock=clock,
        rng=rng,
        progress=progress,
    )


@dataclass(frozen=True, slots=True)
class ReferenceFinder:
    """One reference finder: its name, the signal it yields, its sender and its input files."""

    kind: str
    signal: str
    sender: str
    inputs: tuple[FileLayout, ...]
    run: FindInDataset

    def find(
        self,
        dataset: Path,
        *,
        clock: Clock,
        rng: random.Random,
        progress: ProgressCallback = ignore_progress,
    ) -> Iterator[SignalRecord]:
        """Stream the finder over the dataset directory ``dataset`` (default settings)."""
        return self.run(dataset, clock, rng, progress)


FREQUENT_MOVERS = ReferenceFinder(
    "frequent-movers", "laa.frequent-mover", "RVIG", (ADDRESSES,), _frequent_movers
)
BSN_MISMATCH = ReferenceFinder(
    "bsn-mismatch", "payroll.bsn-mismatch", "UWV", (PERSONS, ADDRESSES, PAYROLL), _bsn_mismatches
)
ADMISSION = ReferenceFinder(
    "admission",
    "waadi.admission-violation",
    "NLA",
    (REGISTER, HIRES, PAYROLL),
    _admission_violations,
)

FINDERS: tuple[ReferenceFinder, ...] = (FREQUENT_MOVERS, BSN_MISMATCH, ADMISSION)


def finder_named(kind: str) -> ReferenceFinder:
    """The finder called ``kind`` (the CLI's ``--kind``); KeyError when there is none."""
    for finder in FINDERS:
        if finder.kind == kind:
            return finder
    raise KeyError(kind)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_jsonl(records: Iterable[SignalRecord], handle: TextIO) -> int:
    """Write each record as one JSON line (dates as ISO text); return how many were written."""
    written = 0
    for record in records:
        line = {name: _json_value(value) for name, value in record.items()}
        handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        written += 1
    return written
