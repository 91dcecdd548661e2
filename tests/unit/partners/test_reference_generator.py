"""The synthetic data generator: reproducible, valid identifiers, sorted files, documented rates."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from sigex.identifiers import check_loonheffingennummer, is_valid_bsn
from sigex.partners.producers.files import ALL_LAYOUTS
from sigex.partners.synthetic import (
    DEFAULT_RATES,
    GenerationSummary,
    PatternRates,
    generate_dataset,
)
from sigex.partners.synthetic.generator import MANIFEST
from sigex.partners.synthetic.reference_data import load_municipalities
from sigex.producers.errors import GeneratorSettingsInvalid

PARTY_MUNICIPALITIES = {"GM0363", "GM0599", "GM0518", "GM0344", "GM0772", "GM1894"}


def rows(directory: Path, file_name: str) -> list[dict[str, str]]:
    with (directory / file_name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", people=2_500, seed=42)
    second = generate_dataset(tmp_path / "b", people=2_500, seed=42)
    for layout in ALL_LAYOUTS:
        a = (first.directory / layout.file_name).read_bytes()
        b = (second.directory / layout.file_name).read_bytes()
        assert a == b, layout.file_name
    assert (first.directory / MANIFEST).read_bytes() == (second.directory / MANIFEST).read_bytes()
    assert first.planted == second.planted


def test_another_seed_gives_other_people(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", people=2_500, seed=1)
    second = generate_dataset(tmp_path / "b", people=2_500, seed=2)
    bsns_a = {r["bsn"] for r in rows(first.directory, "brp_persons.csv")}
    bsns_b = {r["bsn"] for r in rows(second.directory, "brp_persons.csv")}
    assert len(bsns_a & bsns_b) < 100


def test_every_bsn_passes_the_elfproef(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    persons = rows(directory, "brp_persons.csv")
    assert len(persons) == small_dataset.people
    checked = 0
    for file_name, column in (
        ("brp_persons.csv", "bsn"),
        ("brp_addresses.csv", "bsn"),
        ("payroll.csv", "bsn"),
        ("hires.csv", "worker_bsn"),
    ):
        for row in rows(directory, file_name):
            assert is_valid_bsn(row[column]), (file_name, column)
            checked += 1
    assert checked > 4 * small_dataset.people


def test_organisation_identifiers_are_valid(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    employers = rows(directory, "employers.csv")
    assert len({e["kvk"] for e in employers}) == len(employers)
    assert len({e["loonheffingennummer"] for e in employers}) == len(employers)
    for employer in employers:
        assert len(employer["kvk"]) == 8 and employer["kvk"].isdigit()
        check_loonheffingennummer(employer["loonheffingennummer"])
    known = {(e["kvk"], e["loonheffingennummer"]) for e in employers}
    for row in rows(directory, "payroll.csv"):
        assert (row["employer_kvk"], row["employer_loonheffingennummer"]) in known
    uitleners = {e["kvk"] for e in employers if e["sector"] == "UITLENER"}
    for hire in rows(directory, "hires.csv"):
        assert hire["uitlener_kvk"] in uitleners
        assert hire["inlener_kvk"] not in uitleners
        assert (hire["inlener_kvk"], hire["inlener_loonheffingennummer"]) in known


def test_municipality_list_holds_the_party_municipalities() -> None:
    codes = {m.code for m in load_municipalities()}
    assert codes >= PARTY_MUNICIPALITIES
    assert all(len(c) == 6 and c.startswith("GM") and c[2:].isdigit() for c in codes)


def test_addresses_use_listed_municipalities_and_reach_the_parties(
    small_dataset: GenerationSummary,
) -> None:
    codes = {m.code for m in load_municipalities()}
    used = Counter(r["municipality"] for r in rows(small_dataset.directory, "brp_addresses.csv"))
    assert set(used) <= codes
    assert set(used) >= PARTY_MUNICIPALITIES


def test_files_are_sorted_for_merge_joins(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    persons = [r["bsn"] for r in rows(directory, "brp_persons.csv")]
    assert persons == sorted(set(persons))
    addresses = [(r["bsn"], r["valid_from"]) for r in rows(directory, "brp_addresses.csv")]
    assert addresses == sorted(addresses)
    payroll = [(r["bsn"], r["payroll_period"]) for r in rows(directory, "payroll.csv")]
    assert payroll == sorted(payroll)
    hires = [
        (r["uitlener_kvk"], r["inlener_kvk"], r["worker_bsn"]) for r in rows(directory, "hires.csv")
    ]
    assert hires == sorted(hires)


def test_manifest_counts_match_the_files(small_dataset: GenerationSummary) -> None:
    directory = small_dataset.directory
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    for layout in ALL_LAYOUTS:
        assert manifest["rows_per_file"][layout.file_name] == len(rows(directory, layout.file_name))
    registrations = Counter(r["registration"] for r in rows(directory, "brp_persons.csv"))
    assert manifest["planted"]["non_residents"] == registrations["NON_RESIDENT"]
    assert manifest["planted"]["residents"] == registrations["RESIDENT"]
    assert manifest["planted"]["hires"] == len(rows(directory, "hires.csv"))
    assert manifest["seed"] == small_dataset.seed
    assert manifest["payroll_periods"][-1] == "2027-01-01"


def within(observed: float, expected: float, relative: float) -> bool:
    return abs(observed - expected) <= relative * expected


def test_planted_patterns_come_at_the_documented_rates(rates_dataset: GenerationSummary) -> None:
    rates = DEFAULT_RATES
    directory = rates_dataset.directory
    people = rates_dataset.people
    persons = rows(directory, "brp_persons.csv")
    planted = dict(rates_dataset.planted)
    non_residents = sum(p["registration"] == "NON_RESIDENT" for p in persons)
    assert within(non_residents / people, rates.non_resident, 0.12)

    as_of = rates_dataset.as_of
    adult_residents = sum(
        p["registration"] == "RESIDENT"
        and (as_of - date.fromisoformat(p["birth_date"])).days >= 18 * 365
        for p in persons
    )
    assert within(planted["frequent_movers"], rates.frequent_mover * adult_residents, 0.4)
    assert within(planted["bsn_unknown_in_brp"], rates.unknown_bsn * people, 0.5)
    employed_non_residents = non_residents * rates.non_resident_employed
    assert within(
        planted["non_resident_without_address"],
        employed_non_residents * rates.non_resident_without_address,
        0.2,
    )
    stopped_non_residents = non_residents * rates.non_resident_stopped
    assert within(
        planted["non_resident_not_in_payroll"],
        stopped_non_residents * rates.stopped_non_resident_with_address,
        0.25,
    )
    people_in_payroll = len({r["bsn"] for r in rows(directory, "payroll.csv")})  # incl. unknown
    assert within(
        planted["name_or_birthdate_differs"],
        rates.name_or_birthdate_differs * people_in_payroll,
        0.5,
    )
    in_payroll = {r["bsn"] for r in rows(directory, "payroll.csv")}
    idle_working_age = sum(
        p["bsn"] not in in_payroll
        and (
            p["registration"] == "NON_RESIDENT"
            or 18 <= (as_of - date.fromisoformat(p["birth_date"])).days // 365 <= 67
        )
        for p in persons
    )
    assert within(planted["unregistered_hires"], rates.unregistered_hire * idle_working_age, 0.3)
    uitleners = [e for e in rows(directory, "employers.csv") if e["sector"] == "UITLENER"]
    registered = {r["kvk"] for r in rows(directory, "uitlener_register.csv")}
    assert len(registered) <= len(uitleners)
    assert planted["lending_without_admission"] >= 1


def test_rates_outside_zero_to_one_are_refused() -> None:
    with pytest.raises(GeneratorSettingsInvalid, match="non_resident"):
        PatternRates(non_resident=1.5)


def test_impossible_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GeneratorSettingsInvalid):
        generate_dataset(tmp_path, people=0, seed=1)
    with pytest.raises(GeneratorSettingsInvalid):
        generate_dataset(tmp_path, people=10, seed=1, months=1)


def test_without_patterns_nothing_is_planted(tmp_path: Path) -> None:
    quiet = PatternRates(
        frequent_mover=0.0,
        unknown_bsn=0.0,
        non_resident_without_address=0.0,
        stopped_non_resident_with_address=0.0,
        name_or_birthdate_differs=0.0,
        non_admitted_uitlener=0.0,
        unregistered_hire=0.0,
    )
    summary = generate_dataset(tmp_path, people=3_000, seed=9, rates=quiet)
    planted = dict(summary.planted)
    for pattern in (
        "frequent_movers",
        "bsn_unknown_in_brp",
        "non_resident_without_address",
        "non_resident_not_in_payroll",
        "name_or_birthdate_differs",
        "lending_without_admission",
        "hiring_from_non_admitted",
        "unregistered_hires",
        "workers_missing_from_administration",
    ):
        assert planted[pattern] == 0, pattern
