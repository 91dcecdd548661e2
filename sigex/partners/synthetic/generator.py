"""A seeded generator of a synthetic dataset: BRP extract, payroll, uitlener register and hires.

One :class:`random.Random` drives everything, so a seed always yields the same
files byte for byte. People are generated in ascending BSN order and written
as they are made, so memory stays bounded for any population size; only the
employers (one per 25 people) and the hires' sort runs are held in memory.
The files and their columns are described in ``docs/reference-partners.md``;
the planted patterns and their counts go to ``manifest.json``.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from sigex.identifiers import bsn_check_digit
from sigex.partners.producers.external_sort import ExternalSorter, Row
from sigex.partners.producers.files import (
    ADDRESSES,
    EMPLOYERS,
    HIRES,
    NON_RESIDENT,
    OTHER_SECTOR,
    PAYROLL,
    PERSONS,
    REGISTER,
    RESIDENT,
    RESIDENTIAL,
    TEMPORARY,
    UITLENER,
    FileLayout,
)
from sigex.partners.synthetic.rates import DEFAULT_RATES, PatternRates
from sigex.partners.synthetic.reference_data import (
    Municipality,
    NameLists,
    load_municipalities,
    load_names,
)
from sigex.producers.errors import GeneratorSettingsInvalid

MANIFEST = "manifest.json"
DEFAULT_AS_OF = date(2027, 1, 31)
DEFAULT_MONTHS = 6
MAX_PEOPLE = 5_000_000

#: Called with (people written, people asked for) while generating.
GenerationProgress = Callable[[int, int], None]

_POSTCODE_LETTERS = "ABCDEFGHJKLMNPRTVWXZ"
_FORBIDDEN_POSTCODE_SUFFIXES = frozenset({"SA", "SD", "SS"})
_ADDITIONS = ("A", "B", "C", "1", "2", "3", "hs", "bis")
_COMPANY_SUFFIXES = ("B.V.", "Holding B.V.", "V.O.F.", "Groep B.V.")
_UITLENER_WORDS = ("Uitzendbureau", "Flex", "Personeelsdiensten", "Detachering", "Staffing")
_OTHER_WORDS = ("Logistiek", "Tuinbouw", "Bouw", "Vleesverwerking", "Schoonmaak", "Techniek")


@dataclass(frozen=True, slots=True)
class Employer:
    kvk: str
    loonheffingennummer: str
    name: str
    sector: str


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """What was written: rows per file and the number of each planted pattern."""

    directory: Path
    seed: int
    people: int
    as_of: date
    rows_per_file: tuple[tuple[str, int], ...]
    planted: tuple[tuple[str, int], ...]

    def planted_count(self, pattern: str) -> int:
        return dict(self.planted)[pattern]


@dataclass(frozen=True, slots=True)
class _Life:
    """One BRP person as generated, before the rows are written."""

    registration: str
    given_names: str
    family_name: str
    birth_date: date
    registered_on: date
    address_rows: tuple[Row, ...]
    working_age: bool
    employed: bool
    stopped: bool
    via_uitlener_rate: float


@dataclass(slots=True)
class _Counts:
    rows: dict[str, int] = field(default_factory=dict)
    planted: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "residents",
                "non_residents",
                "frequent_movers",
                "bsn_unknown_in_brp",
                "non_resident_without_address",
                "non_resident_not_in_payroll",
                "name_or_birthdate_differs",
                "lending_without_admission",
                "hiring_from_non_admitted",
                "hires",
                "hires_from_non_admitted",
                "unregistered_hires",
                "workers_missing_from_administration",
            ),
            0,
        )
    )


class _Writer:
    """A CSV file of the dataset being written, with its header and a row count."""

    def __init__(self, directory: Path, layout: FileLayout, counts: _Counts) -> None:
        self._layout = layout
        self._handle: TextIO = (directory / layout.file_name).open(
            "w", newline="", encoding="utf-8"
        )
        self._csv = csv.writer(self._handle, lineterminator="\n")
        self._csv.writerow(layout.columns)
        self._counts = counts
        counts.rows[layout.file_name] = 0

    def write(self, row: Row) -> None:
        self._csv.writerow(row)
        self._counts.rows[self._layout.file_name] += 1

    def close(self) -> None:
        self._handle.close()


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _month_end(month: date) -> date:
    return _add_months(month, 1) - timedelta(days=1)


def _rsin(rng: random.Random) -> str:
    """A random nine-digit fiscal number passing the RSIN elfproef."""
    while True:
        first_eight = f"{rng.randrange(1_000_000, 100_000_000):08d}"
        weighted = sum(int(d) * w for d, w in zip(first_eight, range(9, 1, -1), strict=True))
        check = (-weighted) % 11
        if check < 10:
            return first_eight + str(check)


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ł", "l")


def _family_name_variant(name: str, rng: random.Random) -> str:
    """A different spelling: without diacritics when that changes it, else one letter doubled."""
    stripped = _strip_diacritics(name)
    if stripped.casefold() != name.casefold():
        return stripped
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    position = rng.choice(letters)
    return name[: position + 1] + name[position] + name[position + 1 :]


def _birth_date_variant(birth_date: date) -> date:
    """Day and month swapped when that is a different valid date, else one day later."""
    if birth_date.day <= 12 and birth_date.day != birth_date.month:
        return birth_date.replace(month=birth_date.day, day=birth_date.month)
    return birth_date + timedelta(days=1)


class _DatasetGenerator:
    def __init__(
        self,
        directory: Path,
        people: int,
        seed: int,
        as_of: date,
        months: int,
        rates: PatternRates,
        progress: GenerationProgress | None,
    ) -> None:
        self.directory = directory
        self.people = people
        self.seed = seed
        self.as_of = as_of
        self.rates = rates
        self.progress = progress
        # A seeded, reproducible generator of test data, not a secret.
        self.rng = random.Random(seed)  # noqa: S311
        self.counts = _Counts()
        self.periods = tuple(
            _add_months(_month_start(as_of), -i) for i in range(months - 1, -1, -1)
        )
        self.municipalities: tuple[Municipality, ...] = load_municipalities()
        self.municipality_weights = tuple(
            itertools.accumulate(m.population for m in self.municipalities)
        )
        self.names: NameLists = load_names()
        self.employers: tuple[Employer, ...] = ()
        self.uitleners: tuple[Employer, ...] = ()
        self.others: tuple[Employer, ...] = ()
        self.clients: dict[str, tuple[Employer, ...]] = {}
        self.non_admitted: frozenset[str] = frozenset()
        self.non_admitted_with_hires: set[str] = set()
        self.pairs_with_hires: set[tuple[str, str]] = set()
        self.uitleners_with_unregistered: set[str] = set()

    # -- organisations -------------------------------------------------------

    def make_employers(self) -> None:
        rng = self.rng
        employer_count = max(30, self.people // 25)
        uitlener_count = max(8, self.people // 400)
        kvks = sorted(
            f"{k:08d}" for k in rng.sample(range(10_000_000, 100_000_000), employer_count)
        )
        fiscal_numbers: set[str] = set()
        uitlener_kvks = frozenset(rng.sample(kvks, uitlener_count))
        employers = []
        for kvk in kvks:
            fiscal = _rsin(rng)
            while fiscal in fiscal_numbers:
                fiscal = _rsin(rng)
            fiscal_numbers.add(fiscal)
            is_uitlener = kvk in uitlener_kvks
            word = rng.choice(_UITLENER_WORDS if is_uitlener else _OTHER_WORDS)
            family = rng.choice(self.names.resident_family_names)
            name = f"{family} {word} {rng.choice(_COMPANY_SUFFIXES)}"
            sector = UITLENER if is_uitlener else OTHER_SECTOR
            employers.append(Employer(kvk, f"{fiscal}L01", name, sector))
        self.employers = tuple(employers)
        self.uitleners = tuple(e for e in employers if e.sector == UITLENER)
        self.others = tuple(e for e in employers if e.sector != UITLENER)
        self.clients = {
            u.kvk: tuple(rng.sample(self.others, rng.randint(1, min(6, len(self.others)))))
            for u in self.uitleners
        }
        non_admitted_count = max(1, round(len(self.uitleners) * self.rates.non_admitted_uitlener))
        if self.rates.non_admitted_uitlener == 0.0:
            non_admitted_count = 0
        self.non_admitted = frozenset(u.kvk for u in rng.sample(self.uitleners, non_admitted_count))

        writer = _Writer(self.directory, EMPLOYERS, self.counts)
        for e in self.employers:
            writer.write((e.kvk, e.loonheffingennummer, e.name, e.sector))
        writer.close()

        register = _Writer(self.directory, REGISTER, self.counts)
        first_period = self.periods[0]
        for u in self.uitleners:
            if u.kvk in self.non_admitted:
                if rng.random() < 0.6:
                    continue  # never admitted: not in the register
                # admitted once, revoked before the first hire period
                start = _add_months(first_period, -rng.randint(12, 24))
                until = _add_months(first_period, -rng.randint(1, 4)) - timedelta(days=1)
                register.write(
                    (u.kvk, u.loonheffingennummer, u.name, start.isoformat(), until.isoformat())
                )
                continue
            start = _add_months(first_period, -rng.randint(1, 30))
            register.write((u.kvk, u.loonheffingennummer, u.name, start.isoformat(), ""))
        register.close()

    # -- people --------------------------------------------------------------

    def municipality(self) -> str:
        total = self.municipality_weights[-1]
        index = bisect.bisect_right(self.municipality_weights, self.rng.randrange(total))
        return self.municipalities[index].code

    def address_row(self, bsn: str, valid_from: date, kind: str) -> Row:
        rng = self.rng
        while True:
            suffix = rng.choice(_POSTCODE_LETTERS) + rng.choice(_POSTCODE_LETTERS)
            if suffix not in _FORBIDDEN_POSTCODE_SUFFIXES:
                break
        postcode = f"{rng.randint(1000, 9999)}{suffix}"
        house_number = str(min(int(rng.expovariate(1 / 40)) + 1, 999))
        addition = rng.choice(_ADDITIONS) if rng.random() < 0.15 else ""
        return (
            bsn,
            valid_from.isoformat(),
            kind,
            self.municipality(),
            postcode,
            house_number,
            addition,
        )

    def random_day(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, (last - first).days))

    def resident_addresses(
        self, bsn: str, registered_on: date, adult: bool
    ) -> tuple[list[Row], bool]:
        rng = self.rng
        planted_year: int | None = None
        if adult and rng.random() < self.rates.frequent_mover:
            year = self.as_of.year - 1 if rng.random() < 0.75 else self.as_of.year - 2
            if registered_on.year < year:
                planted_year = year
        years = [y for y in range(registered_on.year + 1, self.as_of.year + 1) if y != planted_year]
        normal_moves = rng.choices((0, 1, 2, 3, 4), weights=(35, 30, 20, 10, 5))[0]
        move_days = [
            self.random_day(date(y, 1, 1), min(date(y, 12, 31), self.as_of))
            for y in rng.sample(years, min(normal_moves, len(years)))
        ]
        if planted_year is not None:
            days_in_year = 365 if planted_year % 4 else 366
            offsets = rng.sample(range(days_in_year), rng.randint(5, 8))
            move_days.extend(date(planted_year, 1, 1) + timedelta(days=o) for o in offsets)
        rows = [self.address_row(bsn, registered_on, RESIDENTIAL)]
        rows.extend(self.address_row(bsn, d, RESIDENTIAL) for d in sorted(move_days))
        return rows, planted_year is not None

    def temporary_addresses(self, bsn: str, registered_on: date) -> list[Row]:
        first = self.random_day(registered_on, self.as_of)
        rows = [self.address_row(bsn, first, TEMPORARY)]
        if self.rng.random() < 0.3 and first < self.as_of:
            rows.append(self.address_row(bsn, self.random_day(first, self.as_of), TEMPORARY))
        return rows

    def add_hire(
        self, uitlener: Employer, bsn: str, start: date, hire_end: str, hires: ExternalSorter
    ) -> Employer:
        """Record a hire of ``bsn`` from ``uitlener`` by one of its client inleners."""
        inlener = self.rng.choice(self.clients[uitlener.kvk])
        hires.add(
            (
                uitlener.kvk,
                uitlener.loonheffingennummer,
                inlener.kvk,
                inlener.loonheffingennummer,
                bsn,
                start.isoformat(),
                hire_end,
            )
        )
        self.counts.planted["hires"] += 1
        if uitlener.kvk in self.non_admitted:
            self.counts.planted["hires_from_non_admitted"] += 1
            self.non_admitted_with_hires.add(uitlener.kvk)
            self.pairs_with_hires.add((uitlener.kvk, inlener.kvk))
        return inlener

    def unregistered_hire(self, bsn: str, hires: ExternalSorter) -> None:
        """A hire by an uitlener that never files payroll for the worker."""
        uitlener = self.rng.choice(self.uitleners)
        start = self.periods[self.rng.randrange(len(self.periods))]
        self.add_hire(uitlener, bsn, start, "", hires)
        self.counts.planted["unregistered_hires"] += 1
        self.uitleners_with_unregistered.add(uitlener.kvk)

    def payroll_rows(
        self,
        bsn: str,
        family_name: str,
        birth_date: date,
        employed: bool,
        via_uitlener_rate: float,
        hires: ExternalSorter,
    ) -> list[Row]:
        rng = self.rng
        last_index = len(self.periods) - 1
        if employed:
            start = 0 if rng.random() < 0.7 else rng.randint(1, last_index)
            end = last_index
        else:
            end = rng.randint(0, last_index - 1)
            start = rng.randint(0, end)
        via_uitlener = rng.random() < via_uitlener_rate
        employer = rng.choice(self.uitleners if via_uitlener else self.others)
        spells = [(employer, start, end)]
        if employed and rng.random() < self.rates.second_employer:
            second = rng.choice(self.others)
            if second.kvk != employer.kvk:
                second_start = rng.randint(0, last_index)
                spells.append((second, second_start, rng.randint(second_start, last_index)))
        if via_uitlener:
            hire_end = "" if employed else _month_end(self.periods[end]).isoformat()
            self.add_hire(employer, bsn, self.periods[start], hire_end, hires)
        filings = [
            (self.periods[i], e.kvk, e.loonheffingennummer)
            for e, first, last in spells
            for i in range(first, last + 1)
        ]
        filings.sort()
        born = birth_date.isoformat()
        return [(bsn, p.isoformat(), kvk, lhn, family_name, born) for p, kvk, lhn in filings]

    def generate_people(self) -> None:
        rng = self.rng
        rates = self.rates
        persons = _Writer(self.directory, PERSONS, self.counts)
        addresses = _Writer(self.directory, ADDRESSES, self.counts)
        payroll = _Writer(self.directory, PAYROLL, self.counts)
        hires = ExternalSorter(self.directory, key=lambda row: (row[0], row[2], row[4]))
        planted = self.counts.planted

        slots = self.people * (1 + rates.unknown_bsn)
        mean_gap = max(1, int(80_000_000 / slots))
        prefix = 10_000_000
        written = 0
        report_every = max(10_000, self.people // 50)
        while written < self.people:
            prefix += rng.randint(1, 2 * mean_gap - 1)
            if prefix > 99_999_999:
                raise GeneratorSettingsInvalid("ran out of BSN numbers; ask for fewer people")
            check = bsn_check_digit(f"{prefix:08d}")
            if check is None:
                continue
            bsn = f"{prefix:08d}{check}"
            if rng.random() < rates.unknown_bsn:
                self.unknown_person(bsn, payroll, hires)
                continue
            self.brp_person(bsn, persons, addresses, payroll, hires)
            written += 1
            if self.progress is not None and written % report_every == 0:
                self.progress(written, self.people)
        if self.progress is not None:
            self.progress(written, self.people)
        persons.close()
        addresses.close()
        payroll.close()

        hires_writer = _Writer(self.directory, HIRES, self.counts)
        for row in hires.sorted_rows():
            hires_writer.write(row)
        hires_writer.close()
        planted["lending_without_admission"] = len(self.non_admitted_with_hires)
        planted["hiring_from_non_admitted"] = len(self.pairs_with_hires)
        planted["workers_missing_from_administration"] = len(self.uitleners_with_unregistered)

    def unknown_person(self, bsn: str, payroll: _Writer, hires: ExternalSorter) -> None:
        rng = self.rng
        family_name = rng.choice(self.names.migrant_family_names)
        birth_date = self.random_day(
            date(self.as_of.year - 60, 1, 1), date(self.as_of.year - 20, 12, 31)
        )
        for row in self.payroll_rows(
            bsn, family_name, birth_date, True, self.rates.migrant_via_uitlener, hires
        ):
            payroll.write(row)
        self.counts.planted["bsn_unknown_in_brp"] += 1

    def non_resident_life(self, bsn: str) -> _Life:
        rng = self.rng
        rates = self.rates
        planted = self.counts.planted
        as_of = self.as_of
        planted["non_residents"] += 1
        family_name = rng.choice(self.names.migrant_family_names)
        given_names = rng.choice(self.names.migrant_given_names)
        birth_date = self.random_day(date(as_of.year - 60, 1, 1), date(as_of.year - 20, 12, 31))
        registered_on = self.random_day(date(2015, 1, 1), as_of - timedelta(days=60))
        draw = rng.random()
        employed = draw < rates.non_resident_employed
        stopped = not employed and draw < rates.non_resident_employed + rates.non_resident_stopped
        if employed:
            with_address = rng.random() >= rates.non_resident_without_address
            planted["non_resident_without_address"] += not with_address
        elif stopped:
            with_address = rng.random() < rates.stopped_non_resident_with_address
            planted["non_resident_not_in_payroll"] += with_address
        else:
            with_address = rng.random() < rates.idle_non_resident_with_address
        return _Life(
            registration=NON_RESIDENT,
            given_names=given_names,
            family_name=family_name,
            birth_date=birth_date,
            registered_on=registered_on,
            address_rows=tuple(self.temporary_addresses(bsn, registered_on))
            if with_address
            else (),
            working_age=True,
            employed=employed,
            stopped=stopped,
            via_uitlener_rate=rates.migrant_via_uitlener,
        )

    def resident_life(self, bsn: str) -> _Life:
        rng = self.rng
        rates = self.rates
        as_of = self.as_of
        names = self.names
        self.counts.planted["residents"] += 1
        migrant_background = rng.random() < 0.12
        family_name = rng.choice(
            names.migrant_family_names if migrant_background else names.resident_family_names
        )
        given_names = rng.choice(
            names.migrant_given_names if migrant_background else names.resident_given_names
        )
        birth_date = self.random_day(date(as_of.year - 90, 1, 1), as_of - timedelta(days=30))
        age = (as_of - birth_date).days // 365
        registered_on = birth_date
        if migrant_background and age > 20:
            registered_on = self.random_day(
                max(birth_date + timedelta(days=18 * 365), date(2000, 1, 1)),
                as_of - timedelta(days=30),
            )
        address_rows, mover = self.resident_addresses(bsn, registered_on, age >= 18)
        self.counts.planted["frequent_movers"] += mover
        working_age = 18 <= age <= 67
        draw = rng.random()
        employed = working_age and draw < rates.resident_employed
        stopped = (
            working_age and not employed and draw < rates.resident_employed + rates.resident_stopped
        )
        return _Life(
            registration=RESIDENT,
            given_names=given_names,
            family_name=family_name,
            birth_date=birth_date,
            registered_on=registered_on,
            address_rows=tuple(address_rows),
            working_age=working_age,
            employed=employed,
            stopped=stopped,
            via_uitlener_rate=rates.resident_via_uitlener,
        )

    def brp_person(
        self,
        bsn: str,
        persons: _Writer,
        addresses: _Writer,
        payroll: _Writer,
        hires: ExternalSorter,
    ) -> None:
        rng = self.rng
        if rng.random() < self.rates.non_resident:
            life = self.non_resident_life(bsn)
        else:
            life = self.resident_life(bsn)
        persons.write(
            (
                bsn,
                life.given_names,
                life.family_name,
                life.birth_date.isoformat(),
                life.registration,
                life.registered_on.isoformat(),
            )
        )
        for row in life.address_rows:
            addresses.write(row)
        if not (life.employed or life.stopped):
            if life.working_age and rng.random() < self.rates.unregistered_hire:
                self.unregistered_hire(bsn, hires)
            return
        filed_name, filed_birth_date = life.family_name, life.birth_date
        if rng.random() < self.rates.name_or_birthdate_differs:
            self.counts.planted["name_or_birthdate_differs"] += 1
            if rng.random() < 0.5:
                filed_name = _family_name_variant(life.family_name, rng)
            else:
                filed_birth_date = _birth_date_variant(life.birth_date)
        for row in self.payroll_rows(
            bsn, filed_name, filed_birth_date, life.employed, life.via_uitlener_rate, hires
        ):
            payroll.write(row)

    def write_manifest(self) -> GenerationSummary:
        summary = GenerationSummary(
            directory=self.directory,
            seed=self.seed,
            people=self.people,
            as_of=self.as_of,
            rows_per_file=tuple(sorted(self.counts.rows.items())),
            planted=tuple(sorted(self.counts.planted.items())),
        )
        document: dict[str, Any] = {
            "generator": "sigex.partners.synthetic",
            "seed": self.seed,
            "people": self.people,
            "as_of": self.as_of.isoformat(),
            "payroll_periods": [p.isoformat() for p in self.periods],
            "rates": self.rates.as_dict(),
            "rows_per_file": dict(summary.rows_per_file),
            "planted": dict(summary.planted),
        }
        (self.directory / MANIFEST).write_text(
            json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return summary


def generate_dataset(
    directory: Path,
    *,
    people: int,
    seed: int,
    as_of: date = DEFAULT_AS_OF,
    months: int = DEFAULT_MONTHS,
    rates: PatternRates = DEFAULT_RATES,
    progress: GenerationProgress | None = None,
) -> GenerationSummary:
    """Write a dataset of ``people`` BRP persons to ``directory`` and return what was planted.

    The same arguments always give the same files. Payroll covers the
    ``months`` months up to and including the month of ``as_of``.
    """
    if not 1 <= people <= MAX_PEOPLE:
        raise GeneratorSettingsInvalid(f"people must be between 1 and {MAX_PEOPLE}")
    if not 2 <= months <= 24:
        raise GeneratorSettingsInvalid("months must be between 2 and 24")
    directory.mkdir(parents=True, exist_ok=True)
    generator = _DatasetGenerator(directory, people, seed, as_of, months, rates, progress)
    generator.make_employers()
    generator.generate_people()
    return generator.write_manifest()
