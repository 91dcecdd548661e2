"""The CSV files of a dataset: their layouts, typed rows and strict streaming readers.

Every reader streams one row at a time, checks the header, the number of
columns, each value's format and the documented sort order, and raises
:class:`~sigex.producers.errors.MalformedInput` naming the file, line and column
(never the value) at the first problem. ``docs/reference-partners.md``
describes the columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NoReturn

from sigex.identifiers import is_valid_bsn, is_valid_rsin
from sigex.producers.errors import InputMissing, MalformedInput

RESIDENT = "RESIDENT"
NON_RESIDENT = "NON_RESIDENT"
REGISTRATIONS = frozenset({RESIDENT, NON_RESIDENT})

RESIDENTIAL = "RESIDENTIAL"
TEMPORARY = "TEMPORARY"
ADDRESS_KINDS = frozenset({RESIDENTIAL, TEMPORARY})

UITLENER = "UITLENER"
OTHER_SECTOR = "OTHER"
SECTORS = frozenset({UITLENER, OTHER_SECTOR})


@dataclass(frozen=True, slots=True)
class FileLayout:
    """A file of a dataset: its name in the dataset directory and its header."""

    file_name: str
    columns: tuple[str, ...]


PERSONS = FileLayout(
    "brp_persons.csv",
    ("bsn", "given_names", "family_name", "birth_date", "registration", "registered_on"),
)
ADDRESSES = FileLayout(
    "brp_addresses.csv",
    (
        "bsn",
        "valid_from",
        "kind",
        "municipality",
        "postcode",
        "house_number",
        "house_number_addition",
    ),
)
EMPLOYERS = FileLayout("employers.csv", ("kvk", "loonheffingennummer", "name", "sector"))
PAYROLL = FileLayout(
    "payroll.csv",
    (
        "bsn",
        "payroll_period",
        "employer_kvk",
        "employer_loonheffingennummer",
        "family_name",
        "birth_date",
    ),
)
REGISTER = FileLayout(
    "uitlener_register.csv",
    ("kvk", "loonheffingennummer", "name", "admitted_from", "admitted_until"),
)
HIRES = FileLayout(
    "hires.csv",
    (
        "uitlener_kvk",
        "uitlener_loonheffingennummer",
        "inlener_kvk",
        "inlener_loonheffingennummer",
        "worker_bsn",
        "hire_start",
        "hire_end",
    ),
)

#: How many valid loonheffingennummers a reader remembers, to skip re-checking them.
_REMEMBERED_ORGANISATIONS = 100_000

ALL_LAYOUTS = (PERSONS, ADDRESSES, EMPLOYERS, PAYROLL, REGISTER, HIRES)


@dataclass(frozen=True, slots=True)
class Person:
    bsn: str
    given_names: str
    family_name: str
    birth_date: date
    registration: str
    registered_on: date


@dataclass(frozen=True, slots=True)
class Address:
    valid_from: date
    kind: str
    municipality: str
    postcode: str
    house_number: int
    house_number_addition: str | None


@dataclass(frozen=True, slots=True)
class AddressHistory:
    """All address rows of one person, oldest first."""

    bsn: str
    addresses: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class PayrollFiling:
    bsn: str
    payroll_period: date
    employer_kvk: str
    employer_loonheffingennummer: str
    family_name: str
    birth_date: date


@dataclass(frozen=True, slots=True)
class PayrollHistory:
    """All payroll filings for one BSN, oldest period first."""

    bsn: str
    filings: tuple[PayrollFiling, ...]


@dataclass(frozen=True, slots=True)
class Admission:
    kvk: str
    loonheffingennummer: str
    name: str
    admitted_from: date
    admitted_until: date | None

    def covers(self, first_day: date, last_day: date) -> bool:
        """True when the admission was in force on every day from first_day to last_day."""
        if self.admitted_from > first_day:
            return False
        return self.admitted_until is None or self.admitted_until >= last_day


@dataclass(frozen=True, slots=True)
class Hire:
    uitlener_kvk: str
    uitlener_loonheffingennummer: str
    inlener_kvk: str
    inlener_loonheffingennummer: str
    worker_bsn: str
    hire_start: date
    hire_end: date | None


def dataset_file(directory: Path, layout: FileLayout) -> Path:
    """The path of one file of the dataset in ``directory``; raises when it is missing."""
    path = directory / layout.file_name
    if not path.is_file():
        raise InputMissing(str(path))
    return path


class CsvRows:
    """A strict CSV reader: checks the header and column count, parses typed values.

    Iterate it for raw rows; the ``parse_*`` helpers turn one cell into a typed
    value or raise :class:`MalformedInput` naming the current line and column.
    """

    def __init__(self, path: Path, layout: FileLayout) -> None:
        if not path.is_file():
            raise InputMissing(str(path))
        self.path = path
        self.layout = layout
        self.line = 0
        self.rows_read = 0
        # Rows of one person come together; remember the last BSN that passed the check.
        self._last_valid_bsn = ""
        # Organisations repeat on many rows; remember those that passed, up to a bound.
        self._valid_loonheffingennummers: set[str] = set()

    @property
    def file_label(self) -> str:
        return self.path.name

    def fail(self, column_index: int | None, rule: str) -> NoReturn:
        column = None if column_index is None else self.layout.columns[column_index]
        raise MalformedInput(self.file_label, self.line, column, rule)

    def __iter__(self) -> Iterator[list[str]]:
        width = len(self.layout.columns)
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader, None)
                self.line = reader.line_num
                if header is None:
                    self.fail(None, "the file is empty; expected a header row")
                if tuple(header) != self.layout.columns:
                    self.fail(
                        None,
                        f"the header does not match the layout ({','.join(self.layout.columns)})",
                    )
                for row in reader:
                    self.line = reader.line_num
                    if len(row) != width:
                        self.fail(None, f"expected {width} columns, found {len(row)}")
                    self.rows_read += 1
                    yield row
            except csv.Error as problem:
                self.line = reader.line_num
                self.fail(None, f"not valid CSV ({type(problem).__name__})")
            except UnicodeDecodeError:
                self.fail(None, "not valid UTF-8")

    def parse_bsn(self, row: list[str], index: int) -> str:
        value = row[index]
        if value == self._last_valid_bsn:
            return value
        if not is_valid_bsn(value):
            self.fail(index, "not a valid BSN (9 digits passing the elfproef)")
        self._last_valid_bsn = value
        return value

    def parse_date(self, row: list[str], index: int) -> date:
        value = row[index]
        if len(value) != 10:
            self.fail(index, "not a date in the form YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(index, "not a date in the form YYYY-MM-DD")

    def parse_optional_date(self, row: list[str], index: int) -> date | None:
        return None if row[index] == "" else self.parse_date(row, index)

    def parse_month(self, row: list[str], index: int) -> date:
        value = self.parse_date(row, index)
        if value.day != 1:
            self.fail(index, "a payroll period must be the first day of a month")
        return value

    def parse_int(self, row: list[str], index: int) -> int:
        value = row[index]
        if not value.isdigit() or len(value) > 9:
            self.fail(index, "not a positive whole number")
        return int(value)

    def parse_text(self, row: list[str], index: int) -> str:
        value = row[index]
        if value == "":
            self.fail(index, "must not be empty")
        return value

    def parse_optional_text(self, row: list[str], index: int) -> str | None:
        value = row[index]
        return None if value == "" else value

    def parse_choice(self, row: list[str], index: int, allowed: frozenset[str]) -> str:
        value = row[index]
        if value not in allowed:
            self.fail(index, f"must be one of {', '.join(sorted(allowed))}")
        return value

    def parse_kvk(self, row: list[str], index: int) -> str:
        value = row[index]
        if len(value) != 8 or not value.isdigit():
            self.fail(index, "not a KvK number (8 digits)")
        return value

    def parse_loonheffingennummer(self, row: list[str], index: int) -> str:
        value = row[index]
        if value in self._valid_loonheffingennummers:
            return value
        if (
            len(value) != 12
            or value[9] != "L"
            or not value[:9].isdigit()
            or not value[10:].isdigit()
            or not is_valid_rsin(value[:9])
        ):
            self.fail(index, "not a loonheffingennummer (9-digit fiscal number, L, 2 digits)")
        if len(self._valid_loonheffingennummers) < _REMEMBERED_ORGANISATIONS:
            self._valid_loonheffingennummers.add(value)
        return value

    def parse_municipality(self, row: list[str], index: int) -> str:
        value = row[index]
        if len(value) != 6 or not value.startswith("GM") or not value[2:].isdigit():
            self.fail(index, "not a municipality code (GM and 4 digits)")
        return value

    def parse_postcode(self, row: list[str], index: int) -> str:
        value = row[index]
        if (
            len(value) != 6
            or not value[:4].isdigit()
            or value[0] == "0"
            or not value[4:].isalpha()
            or not value[4:].isupper()
        ):
            self.fail(index, "not a Dutch postcode (4 digits, 2 capital letters)")
        return value


class PersonsFile:
    """The BRP persons, sorted by BSN (strictly ascending: one row per person)."""

    def __init__(self, path: Path) -> None:
        self._rows = CsvRows(path, PERSONS)

    @property
    def rows_read(self) -> int:
        return self._rows.rows_read

    def __iter__(self) -> Iterator[Person]:
        rows = self._rows
        previous = ""
        for row in rows:
            bsn = rows.parse_bsn(row, 0)
            if bsn <= previous:
                rows.fail(0, "rows must be sorted by bsn, one row per person")
            previous = bsn
            yield Person(
                bsn=bsn,
                given_names=rows.parse_text(row, 1),
                family_name=rows.parse_text(row, 2),
                birth_date=rows.parse_date(row, 3),
                registration=rows.parse_choice(row, 4, REGISTRATIONS),
                registered_on=rows.parse_date(row, 5),
            )


class AddressesFile:
    """BRP address histories: grouped by person (BSN ascending), each oldest first."""

    def __init__(self, path: Path) -> None:
        self._rows = CsvRows(path, ADDRESSES)

    @property
    def rows_read(self) -> int:
        return self._rows.rows_read

    def __iter__(self) -> Iterator[AddressHistory]:
        rows = self._rows
        current_bsn = ""
        current: list[Address] = []
        for row in rows:
            bsn = rows.parse_bsn(row, 0)
            address = Address(
                valid_from=rows.parse_date(row, 1),
                kind=rows.parse_choice(row, 2, ADDRESS_KINDS),
                municipality=rows.parse_municipality(row, 3),
                postcode=rows.parse_postcode(row, 4),
                house_number=rows.parse_int(row, 5),
                house_number_addition=rows.parse_optional_text(row, 6),
            )
            if bsn == current_bsn:
                if address.valid_from < current[-1].valid_from:
                    rows.fail(1, "rows of one person must be sorted by valid_from")
                current.append(address)
                continue
            if bsn < current_bsn:
                rows.fail(0, "rows must be grouped by person, sorted by bsn")
            if current:
                yield AddressHistory(current_bsn, tuple(current))
            current_bsn = bsn
            current = [address]
        if current:
            yield AddressHistory(current_bsn, tuple(current))


class PayrollFile:
    """Payroll filings grouped by BSN (ascending), each group sorted by payroll period."""

    def __init__(self, path: Path) -> None:
        self._rows = CsvRows(path, PAYROLL)

    @property
    def rows_read(self) -> int:
        return self._rows.rows_read

    def __iter__(self) -> Iterator[PayrollHistory]:
        rows = self._rows
        current_bsn = ""
        current: list[PayrollFiling] = []
        for row in rows:
            bsn = rows.parse_bsn(row, 0)
            filing = PayrollFiling(
                bsn=bsn,
                payroll_period=rows.parse_month(row, 1),
                employer_kvk=rows.parse_kvk(row, 2),
                employer_loonheffingennummer=rows.parse_loonheffingennummer(row, 3),
                family_name=rows.parse_text(row, 4),
                birth_date=rows.parse_date(row, 5),
            )
            if bsn == current_bsn:
                if filing.payroll_period < current[-1].payroll_period:
                    rows.fail(1, "rows of one BSN must be sorted by payroll_period")
                current.append(filing)
                continue
            if bsn < current_bsn:
                rows.fail(0, "rows must be grouped by bsn, sorted by bsn")
            if current:
                yield PayrollHistory(current_bsn, tuple(current))
            current_bsn = bsn
            current = [filing]
        if current:
            yield PayrollHistory(current_bsn, tuple(current))

    def latest_period(self) -> date | None:
        """The latest payroll period in the file (one extra streaming pass)."""
        rows = self._rows
        latest: date | None = None
        for row in rows:
            period = rows.parse_month(row, 1)
            if latest is None or period > latest:
                latest = period
        rows.rows_read = 0
        return latest


class RegisterFile:
    """The register of admitted uitleners (small: read whole into memory by the finder)."""

    def __init__(self, path: Path) -> None:
        self._rows = CsvRows(path, REGISTER)

    @property
    def rows_read(self) -> int:
        return self._rows.rows_read

    def __iter__(self) -> Iterator[Admission]:
        rows = self._rows
        for row in rows:
            admission = Admission(
                kvk=rows.parse_kvk(row, 0),
                loonheffingennummer=rows.parse_loonheffingennummer(row, 1),
                name=rows.parse_text(row, 2),
                admitted_from=rows.parse_date(row, 3),
                admitted_until=rows.parse_optional_date(row, 4),
            )
            if (
                admission.admitted_until is not None
                and admission.admitted_until < admission.admitted_from
            ):
                rows.fail(4, "admitted_until is before admitted_from")
            yield admission


class HiresFile:
    """Hires by inleners, sorted by uitlener_kvk, then inlener_kvk, then worker_bsn."""

    def __init__(self, path: Path) -> None:
        self._rows = CsvRows(path, HIRES)

    @property
    def rows_read(self) -> int:
        return self._rows.rows_read

    @property
    def line(self) -> int:
        return self._rows.line

    def __iter__(self) -> Iterator[Hire]:
        rows = self._rows
        previous: tuple[str, str, str] = ("", "", "")
        for row in rows:
            hire = Hire(
                uitlener_kvk=rows.parse_kvk(row, 0),
                uitlener_loonheffingennummer=rows.parse_loonheffingennummer(row, 1),
                inlener_kvk=rows.parse_kvk(row, 2),
                inlener_loonheffingennummer=rows.parse_loonheffingennummer(row, 3),
                worker_bsn=rows.parse_bsn(row, 4),
                hire_start=rows.parse_date(row, 5),
                hire_end=rows.parse_optional_date(row, 6),
            )
            if hire.hire_end is not None and hire.hire_end < hire.hire_start:
                rows.fail(6, "hire_end is before hire_start")
            order = (hire.uitlener_kvk, hire.inlener_kvk, hire.worker_bsn)
            if order < previous:
                rows.fail(0, "rows must be sorted by uitlener_kvk, inlener_kvk, worker_bsn")
            previous = order
            yield hire
