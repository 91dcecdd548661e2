"""RvIG's reference finder for the LAA frequent-mover signal (``laa.frequent-mover``).

A person who moved more than ``threshold`` times within one calendar year
(the LAA profile) is reported to the municipality of the current address. A
move is a residential address row after the person's first residential row;
temporary addresses of non-residents are not counted. The current address is
the latest residential row. One signal per person per qualifying year.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from sigex.clock import Clock
from sigex.partners.producers.files import RESIDENTIAL, AddressesFile, AddressHistory
from sigex.partners.producers.stamps import (
    Progress,
    ProgressCallback,
    SignalRecord,
    SignalStamper,
    ignore_progress,
)

FINDER_NAME = "frequent-movers"

#: The LAA profile code carried in each signal: more than four moves in one calendar year.
FREQUENT_MOVER_PROFILE = "LAA-VEELVERHUIZER"

#: The LAA profile: more than this many moves within one calendar year.
DEFAULT_MOVE_THRESHOLD = 4


def moves_per_year(history: AddressHistory) -> Counter[int]:
    """How many residential moves the person made in each calendar year."""
    residential = [a for a in history.addresses if a.kind == RESIDENTIAL]
    return Counter(address.valid_from.year for address in residential[1:])


def find_frequent_movers(
    addresses: Path,
    *,
    clock: Clock,
    rng: random.Random,
    threshold: int = DEFAULT_MOVE_THRESHOLD,
    profile: str = FREQUENT_MOVER_PROFILE,
    progress: ProgressCallback = ignore_progress,
    progress_every: int = 100_000,
) -> Iterator[SignalRecord]:
    """Stream the address histories once and yield a ``laa.frequent-mover`` record per find.

    Memory holds one person's history at a time. Raises
    :class:`~sigex.producers.errors.MalformedInput` on a malformed or unsorted file.
    """
    source = AddressesFile(addresses)
    stamper = SignalStamper(clock, rng)
    found = 0
    next_report = progress_every
    for history in source:
        if source.rows_read >= next_report:
            progress(Progress(FINDER_NAME, source.rows_read, found, finished=False))
            next_report = source.rows_read + progress_every
        counts = moves_per_year(history)
        qualifying = sorted(year for year, moves in counts.items() if moves > threshold)
        if not qualifying:
            continue
        current = [a for a in history.addresses if a.kind == RESIDENTIAL][-1]
        for year in qualifying:
            found += 1
            yield {
                "signal_id": stamper.new_signal_id(),
                "detected_at": stamper.detected_at(),
                "bsn": history.bsn,
                "municipality": current.municipality,
                "postcode": current.postcode,
                "house_number": current.house_number,
                "house_number_addition": current.house_number_addition,
                "moves_in_period": counts[year],
                "period_start": date(year, 1, 1),
                "period_end": date(year, 12, 31),
                "profile": profile,
            }
    progress(Progress(FINDER_NAME, source.rows_read, found, finished=True))
