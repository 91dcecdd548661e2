"""UWV's reference finder for BSN mismatches between payroll and the BRP (``payroll.bsn-mismatch``).

One streaming merge-join over three files sorted by BSN: the BRP persons, the
BRP address histories and the payroll filings. The reference period is the
latest payroll period (or the one given). Kinds, at most one record of each
kind per BSN:

- ``BSN_UNKNOWN_IN_BRP``: the BSN is in payroll but not in the BRP extract.
- ``NON_RESIDENT_WITHOUT_ADDRESS``: a non-resident filed in the reference
  period who has no temporary address.
- ``NON_RESIDENT_NOT_IN_PAYROLL``: a non-resident with a temporary address who
  was filed before the reference period but not in or after it.
- ``NAME_OR_BIRTHDATE_DIFFERS``: a filing whose family name (compared without
  case) or birth date differs from the BRP.

The employer and period of a record are those of the latest relevant filing.
``family_name`` and ``birth_date`` are the values *as filed*, and only for the
kinds that are about them (unknown BSN, differing name or birth date).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from sigex.clock import Clock
from sigex.partners.producers.files import (
    NON_RESIDENT,
    RESIDENTIAL,
    TEMPORARY,
    Address,
    AddressesFile,
    AddressHistory,
    PayrollFile,
    PayrollFiling,
    PayrollHistory,
    Person,
    PersonsFile,
)
from sigex.partners.producers.stamps import (
    Progress,
    ProgressCallback,
    SignalRecord,
    SignalStamper,
    ignore_progress,
)

FINDER_NAME = "bsn-mismatch"

BSN_UNKNOWN_IN_BRP = "BSN_UNKNOWN_IN_BRP"
NON_RESIDENT_WITHOUT_ADDRESS = "NON_RESIDENT_WITHOUT_ADDRESS"
NON_RESIDENT_NOT_IN_PAYROLL = "NON_RESIDENT_NOT_IN_PAYROLL"
NAME_OR_BIRTHDATE_DIFFERS = "NAME_OR_BIRTHDATE_DIFFERS"
MISMATCH_KINDS = (
    BSN_UNKNOWN_IN_BRP,
    NON_RESIDENT_WITHOUT_ADDRESS,
    NON_RESIDENT_NOT_IN_PAYROLL,
    NAME_OR_BIRTHDATE_DIFFERS,
)


def _latest(addresses: tuple[Address, ...], kind: str) -> Address | None:
    for address in reversed(addresses):
        if address.kind == kind:
            return address
    return None


def _latest_filing(filings: tuple[PayrollFiling, ...]) -> PayrollFiling:
    """The filing of the latest period; among equal periods, the first in the file."""
    latest = filings[-1].payroll_period
    return next(f for f in filings if f.payroll_period == latest)


def _differs(filing: PayrollFiling, person: Person) -> bool:
    return (
        filing.birth_date != person.birth_date
        or filing.family_name.casefold() != person.family_name.casefold()
    )


def find_bsn_mismatches(
    persons: Path,
    addresses: Path,
    payroll: Path,
    *,
    clock: Clock,
    rng: random.Random,
    reference_period: date | None = None,
    progress: ProgressCallback = ignore_progress,
    progress_every: int = 100_000,
) -> Iterator[SignalRecord]:
    """Merge-join payroll with the BRP extract and yield ``payroll.bsn-mismatch`` records.

    Memory holds one person's rows from each file. When ``reference_period``
    is None, the latest period in the payroll file is used (found by an extra
    streaming pass). Raises :class:`~sigex.producers.errors.MalformedInput` on a
    malformed or unsorted file.
    """
    payroll_file = PayrollFile(payroll)
    if reference_period is None:
        # An empty payroll file has no latest period, and no filings to compare either.
        reference_period = payroll_file.latest_period() or date.min
    persons_file = PersonsFile(persons)
    addresses_file = AddressesFile(addresses)
    stamper = SignalStamper(clock, rng)

    person_stream = iter(persons_file)
    address_stream = iter(addresses_file)
    person: Person | None = next(person_stream, None)
    history: AddressHistory | None = next(address_stream, None)

    found = 0
    next_report = progress_every

    def rows_read() -> int:
        return payroll_file.rows_read + persons_file.rows_read + addresses_file.rows_read

    def record(
        kind: str,
        bsn: str,
        filing: PayrollFiling,
        municipality: str | None,
        as_filed: bool,
    ) -> SignalRecord:
        return {
            "signal_id": stamper.new_signal_id(),
            "detected_at": stamper.detected_at(),
            "bsn": bsn,
            "kind": kind,
            "employer_loonheffingennummer": filing.employer_loonheffingennummer,
            "employer_kvk": filing.employer_kvk,
            "payroll_period": filing.payroll_period,
            "municipality": municipality,
            "family_name": filing.family_name if as_filed else None,
            "birth_date": filing.birth_date if as_filed else None,
        }

    for group in payroll_file:
        bsn = group.bsn
        while person is not None and person.bsn < bsn:
            person = next(person_stream, None)
        while history is not None and history.bsn < bsn:
            history = next(address_stream, None)
        if rows_read() >= next_report:
            progress(Progress(FINDER_NAME, rows_read(), found, finished=False))
            next_report = rows_read() + progress_every

        if person is None or person.bsn != bsn:
            found += 1
            yield record(BSN_UNKNOWN_IN_BRP, bsn, _latest_filing(group.filings), None, True)
            continue

        own_addresses = history.addresses if history is not None and history.bsn == bsn else ()
        for signal in _mismatches_of_person(person, own_addresses, group, reference_period):
            kind, filing, municipality = signal
            found += 1
            yield record(kind, bsn, filing, municipality, kind == NAME_OR_BIRTHDATE_DIFFERS)

    # Drain the BRP files so that a malformed or unsorted tail is still reported.
    for _ in person_stream:
        pass
    for _ in address_stream:
        pass
    progress(Progress(FINDER_NAME, rows_read(), found, finished=True))


def _mismatches_of_person(
    person: Person,
    addresses: tuple[Address, ...],
    group: PayrollHistory,
    reference_period: date,
) -> Iterator[tuple[str, PayrollFiling, str | None]]:
    temporary = _latest(addresses, TEMPORARY)
    residential = _latest(addresses, RESIDENTIAL)
    if person.registration == NON_RESIDENT:
        up_to_reference = tuple(f for f in group.filings if f.payroll_period <= reference_period)
        if up_to_reference:
            last = _latest_filing(up_to_reference)
            filed_in_reference = last.payroll_period == reference_period
            filed_after = len(up_to_reference) < len(group.filings)
            if filed_in_reference and temporary is None:
                yield NON_RESIDENT_WITHOUT_ADDRESS, last, None
            if not filed_in_reference and not filed_after and temporary is not None:
                yield NON_RESIDENT_NOT_IN_PAYROLL, last, temporary.municipality
    differing = [f for f in group.filings if _differs(f, person)]
    if differing:
        current = residential or temporary
        yield (
            NAME_OR_BIRTHDATE_DIFFERS,
            _latest_filing(tuple(differing)),
            None if current is None else current.municipality,
        )
