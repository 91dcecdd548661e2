"""Each reference finder finds exactly the planted patterns, checked against a naive count."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from sigex.clock import FixedClock
from sigex.partners.producers import admission
from sigex.partners.producers.admission import find_admission_violations
from sigex.partners.producers.bsn_mismatch import find_bsn_mismatches
from sigex.partners.producers.finders import (
    ADMISSION,
    BSN_MISMATCH,
    FINDERS,
    FREQUENT_MOVERS,
    ReferenceFinder,
)
from sigex.partners.producers.frequent_movers import find_frequent_movers
from sigex.partners.producers.stamps import Progress
from sigex.partners.synthetic import GenerationSummary, PatternRates, generate_dataset
from sigex.schemas.catalogue import load_catalogue
from sigex.schemas.codec import validate_record

CLOCK = FixedClock(datetime(2027, 2, 1, 9, 30, 15, 123456, tzinfo=UTC))


def rows(directory: Path, file_name: str) -> list[dict[str, str]]:
    with (directory / file_name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(finder_kind: str, directory: Path, seed: int = 0) -> list[dict[str, Any]]:
    finder = {f.kind: f for f in FINDERS}[finder_kind]
    return list(finder.find(directory, clock=CLOCK, rng=random.Random(seed)))


# -- naive, in-memory versions of each rule, written independently of the finders --


def naive_frequent_movers(directory: Path) -> set[tuple[str, int, str, int]]:
    by_person: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows(directory, "brp_addresses.csv"):
        if row["kind"] == "RESIDENTIAL":
            by_person[row["bsn"]].append(row)
    found = set()
    for bsn, history in by_person.items():
        history.sort(key=lambda r: r["valid_from"])
        per_year: defaultdict[int, int] = defaultdict(int)
        for move in history[1:]:
            per_year[int(move["valid_from"][:4])] += 1
        for year, moves in per_year.items():
            if moves > 4:
                found.add((bsn, year, history[-1]["municipality"], moves))
    return found


def naive_mismatches(directory: Path, reference: str | None = None) -> set[tuple[str, str]]:
    persons = {r["bsn"]: r for r in rows(directory, "brp_persons.csv")}
    temporary = {r["bsn"] for r in rows(directory, "brp_addresses.csv") if r["kind"] == "TEMPORARY"}
    payroll: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows(directory, "payroll.csv"):
        payroll[row["bsn"]].append(row)
    if reference is None:
        reference = max(r["payroll_period"] for filings in payroll.values() for r in filings)
    found = set()
    for bsn, filings in payroll.items():
        person = persons.get(bsn)
        if person is None:
            found.add(("BSN_UNKNOWN_IN_BRP", bsn))
            continue
        periods = {f["payroll_period"] for f in filings}
        if person["registration"] == "NON_RESIDENT":
            before = any(p < reference for p in periods)
            after = any(p > reference for p in periods)
            if reference in periods and bsn not in temporary:
                found.add(("NON_RESIDENT_WITHOUT_ADDRESS", bsn))
            if before and reference not in periods and not after and bsn in temporary:
                found.add(("NON_RESIDENT_NOT_IN_PAYROLL", bsn))
        if any(
            f["family_name"].lower() != person["family_name"].lower()
            or f["birth_date"] != person["birth_date"]
            for f in filings
        ):
            found.add(("NAME_OR_BIRTHDATE_DIFFERS", bsn))
    return found


def naive_violations(
    directory: Path, observed_on: date
) -> dict[tuple[str, str, str | None], set[str]]:
    admissions: defaultdict[str, list[tuple[date, date | None]]] = defaultdict(list)
    for row in rows(directory, "uitlener_register.csv"):
        until = date.fromisoformat(row["admitted_until"]) if row["admitted_until"] else None
        admissions[row["kvk"]].append((date.fromisoformat(row["admitted_from"]), until))
    filed: defaultdict[str, list[tuple[str, date]]] = defaultdict(list)
    for row in rows(directory, "payroll.csv"):
        filed[row["bsn"]].append((row["employer_kvk"], date.fromisoformat(row["payroll_period"])))
    found: defaultdict[tuple[str, str, str | None], set[str]] = defaultdict(set)
    for hire in rows(directory, "hires.csv"):
        start = date.fromisoformat(hire["hire_start"])
        end = date.fromisoformat(hire["hire_end"]) if hire["hire_end"] else max(observed_on, start)
        covered = any(
            first <= start and (until is None or until >= end)
            for first, until in admissions[hire["uitlener_kvk"]]
        )
        if not covered:
            uitlener = hire["uitlener_kvk"]
            found[("HIRING_FROM_NON_ADMITTED", uitlener, hire["inlener_kvk"])].add(
                hire["worker_bsn"]
            )
            found[("LENDING_WITHOUT_ADMISSION", uitlener, None)].add(hire["worker_bsn"])
        first_month, last_month = start.replace(day=1), end.replace(day=1)
        if not any(
            employer == hire["uitlener_kvk"] and first_month <= period <= last_month
            for employer, period in filed[hire["worker_bsn"]]
        ):
            found[("WORKERS_MISSING_FROM_ADMINISTRATION", hire["uitlener_kvk"], None)].add(
                hire["worker_bsn"]
            )
    return dict(found)


# -- the finders against the naive versions and the generator's manifest --


def test_frequent_movers_are_exactly_the_planted_ones(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    records = run(FREQUENT_MOVERS.kind, directory)
    found = {
        (r["bsn"], r["period_start"].year, r["municipality"], r["moves_in_period"]) for r in records
    }
    assert len(found) == len(records)
    assert found == naive_frequent_movers(directory)
    assert len(records) == small_dataset.planted_count("frequent_movers") > 0
    for record in records:
        assert record["period_start"] == date(record["period_start"].year, 1, 1)
        assert record["period_end"] == date(record["period_start"].year, 12, 31)
        assert record["moves_in_period"] > 4


def test_bsn_mismatches_are_exactly_the_planted_ones(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    records = run(BSN_MISMATCH.kind, directory)
    found = {(r["kind"], r["bsn"]) for r in records}
    assert len(found) == len(records)
    assert found == naive_mismatches(directory)
    per_kind: defaultdict[str, int] = defaultdict(int)
    for kind, _bsn in found:
        per_kind[kind] += 1
    planted = dict(small_dataset.planted)
    assert per_kind["BSN_UNKNOWN_IN_BRP"] == planted["bsn_unknown_in_brp"] > 0
    assert per_kind["NON_RESIDENT_WITHOUT_ADDRESS"] == planted["non_resident_without_address"] > 0
    assert per_kind["NON_RESIDENT_NOT_IN_PAYROLL"] == planted["non_resident_not_in_payroll"] > 0
    assert per_kind["NAME_OR_BIRTHDATE_DIFFERS"] == planted["name_or_birthdate_differs"] > 0


def test_an_earlier_reference_period(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    records = list(
        find_bsn_mismatches(
            directory / "brp_persons.csv",
            directory / "brp_addresses.csv",
            directory / "payroll.csv",
            clock=CLOCK,
            rng=random.Random(0),
            reference_period=date(2026, 11, 1),
        )
    )
    found = {(r["kind"], r["bsn"]) for r in records}
    assert found == naive_mismatches(directory, "2026-11-01")
    latest = naive_mismatches(directory)
    assert found != latest
    for record in records:
        if record["kind"] in ("NON_RESIDENT_WITHOUT_ADDRESS", "NON_RESIDENT_NOT_IN_PAYROLL"):
            assert record["payroll_period"] <= date(2026, 11, 1)


def test_bsn_mismatch_fields_follow_the_kind(small_dataset: GenerationSummary) -> None:
    records = run(BSN_MISMATCH.kind, small_dataset.directory)
    for record in records:
        kind = record["kind"]
        assert isinstance(record["payroll_period"], date) and record["payroll_period"].day == 1
        if kind in ("BSN_UNKNOWN_IN_BRP", "NAME_OR_BIRTHDATE_DIFFERS"):
            assert record["family_name"] is not None and record["birth_date"] is not None
        else:
            assert record["family_name"] is None and record["birth_date"] is None
        if kind in ("BSN_UNKNOWN_IN_BRP", "NON_RESIDENT_WITHOUT_ADDRESS"):
            assert record["municipality"] is None
        if kind == "NON_RESIDENT_NOT_IN_PAYROLL":
            assert record["municipality"] is not None
            assert record["payroll_period"] < date(2027, 1, 1)


def test_admission_violations_are_exactly_the_planted_ones(
    small_dataset: GenerationSummary,
) -> None:
    directory = small_dataset.directory
    records = run(ADMISSION.kind, directory)
    found = {
        (r["kind"], r["uitlener_kvk"], r["inlener_kvk"]): set(r["worker_bsns"]) for r in records
    }
    assert len(found) == len(records)
    assert found == naive_violations(directory, CLOCK.now().date())
    kinds = [r["kind"] for r in records]
    assert kinds.count("LENDING_WITHOUT_ADMISSION") == small_dataset.planted_count(
        "lending_without_admission"
    )
    assert kinds.count("HIRING_FROM_NON_ADMITTED") == small_dataset.planted_count(
        "hiring_from_non_admitted"
    )
    assert kinds.count("WORKERS_MISSING_FROM_ADMINISTRATION") == small_dataset.planted_count(
        "workers_missing_from_administration"
    )
    workers = sum(r["worker_count"] for r in records if r["kind"] == "LENDING_WITHOUT_ADMISSION")
    assert workers == small_dataset.planted_count("hires_from_non_admitted")
    missing = sum(
        r["worker_count"] for r in records if r["kind"] == "WORKERS_MISSING_FROM_ADMINISTRATION"
    )
    assert missing == small_dataset.planted_count("unregistered_hires") > 0
    for record in records:
        assert record["worker_count"] == len(record["worker_bsns"])
        assert record["observed_from"] <= record["observed_to"]
        assert (record["inlener_kvk"] is None) == (record["kind"] != "HIRING_FROM_NON_ADMITTED")


def test_missing_workers_survive_sorting_through_disk(
    small_dataset: GenerationSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = small_dataset.directory

    def violations(work_directory: Path | None, with_payroll: bool) -> list[dict[str, Any]]:
        return list(
            find_admission_violations(
                directory / "uitlener_register.csv",
                directory / "hires.csv",
                payroll=directory / "payroll.csv" if with_payroll else None,
                clock=CLOCK,
                rng=random.Random(0),
                work_directory=work_directory,
            )
        )

    in_memory = violations(None, with_payroll=True)
    monkeypatch.setattr(admission, "SORT_RUN_ROWS", 5)
    spilled: list[dict[str, Any]] = []
    finder = find_admission_violations(
        directory / "uitlener_register.csv",
        directory / "hires.csv",
        payroll=directory / "payroll.csv",
        clock=CLOCK,
        rng=random.Random(0),
        work_directory=tmp_path,
    )
    runs_on_disk = 0
    for record in finder:
        spilled.append(record)
        if record["kind"] == "WORKERS_MISSING_FROM_ADMINISTRATION" and not runs_on_disk:
            # the missing hires are being merged back from their sorted runs
            runs_on_disk = len(list(tmp_path.glob("sort-*/run-*.csv")))
    assert runs_on_disk >= 2, "the missing hires went to disk in sorted runs"
    assert spilled == in_memory
    assert any(r["kind"] == "WORKERS_MISSING_FROM_ADMINISTRATION" for r in spilled)
    assert list(tmp_path.iterdir()) == [], "the sort runs are removed"
    without_payroll = violations(None, with_payroll=False)
    assert in_memory[: len(without_payroll)] == without_payroll


@pytest.mark.parametrize("finder", FINDERS, ids=lambda f: f.kind)
def test_records_match_the_signal_schema(
    finder: ReferenceFinder, small_dataset: GenerationSummary
) -> None:
    spec = load_catalogue().signal(finder.signal)
    records = run(finder.kind, small_dataset.directory)
    assert records
    for record in records:
        assert set(record) == set(spec.field_names)
        validate_record(spec, record)
        assert record["detected_at"] == datetime(2027, 2, 1, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize("finder", FINDERS, ids=lambda f: f.kind)
def test_signal_ids_are_reproducible_and_unique(
    finder: ReferenceFinder, small_dataset: GenerationSummary
) -> None:
    first = [r["signal_id"] for r in run(finder.kind, small_dataset.directory, seed=7)]
    again = [r["signal_id"] for r in run(finder.kind, small_dataset.directory, seed=7)]
    other = [r["signal_id"] for r in run(finder.kind, small_dataset.directory, seed=8)]
    assert first == again
    assert len(set(first)) == len(first)
    assert not set(first) & set(other)


def test_progress_is_reported_and_finishes_with_the_totals(
    small_dataset: GenerationSummary,
) -> None:
    reports: list[Progress] = []
    addresses = small_dataset.directory / "brp_addresses.csv"
    records = list(
        find_frequent_movers(
            addresses,
            clock=CLOCK,
            rng=random.Random(0),
            progress=reports.append,
            progress_every=1_000,
        )
    )
    total_rows = dict(small_dataset.rows_per_file)["brp_addresses.csv"]
    assert len(reports) >= total_rows // 1_000
    assert [r.rows_read for r in reports] == sorted(r.rows_read for r in reports)
    assert reports[-1] == Progress("frequent-movers", total_rows, len(records), finished=True)
    assert not any(r.finished for r in reports[:-1])


def test_a_dataset_without_patterns_yields_no_signals(tmp_path: Path) -> None:
    quiet = PatternRates(
        frequent_mover=0.0,
        unknown_bsn=0.0,
        non_resident_without_address=0.0,
        stopped_non_resident_with_address=0.0,
        name_or_birthdate_differs=0.0,
        non_admitted_uitlener=0.0,
        unregistered_hire=0.0,
    )
    generate_dataset(tmp_path, people=3_000, seed=9, rates=quiet)
    for finder in FINDERS:
        assert run(finder.kind, tmp_path) == [], finder.kind
