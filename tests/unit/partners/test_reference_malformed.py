"""Malformed input: a typed error naming file, line and column, and never a BSN."""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.clock import FixedClock
from sigex.identifiers import is_valid_bsn
from sigex.partners.producers.finders import FINDERS
from sigex.partners.synthetic import GenerationSummary
from sigex.producers.errors import InputMissing, MalformedInput

NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


def copy_dataset(summary: GenerationSummary, target: Path) -> Path:
    shutil.copytree(summary.directory, target)
    return target


def edit_line(path: Path, line_number: int, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    cells = lines[line_number - 1].split(",")
    lines[line_number - 1] = ",".join(edit(cells))
    path.write_text("\n".join(lines), encoding="utf-8")


def all_bsns(directory: Path) -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in directory.glob("*.csv"))
    return {m for m in NINE_DIGITS.findall(text) if is_valid_bsn(m)}


def run_all(directory: Path, kind: str) -> None:
    finder = next(f for f in FINDERS if f.kind == kind)
    for _ in finder.find(directory, clock=FixedClock(), rng=random.Random(0)):
        pass


def assert_safe(
    error: Exception, directory: Path, extra: frozenset[str] | set[str] = frozenset()
) -> None:
    message = str(error)
    for bsn in all_bsns(directory) | set(extra):
        assert bsn not in message
    assert not any(is_valid_bsn(m) for m in NINE_DIGITS.findall(message))


def broken_bsn(bsn: str) -> str:
    last = int(bsn[8])
    for replacement in range(10):
        candidate = bsn[:8] + str((last + replacement) % 10)
        if not is_valid_bsn(candidate):
            return candidate
    raise AssertionError("no invalid neighbour")


def test_a_bsn_failing_the_elfproef(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    persons = directory / "brp_persons.csv"
    original = persons.read_text(encoding="utf-8").split("\n")[4].split(",")[0]
    edit_line(persons, 5, lambda cells: [broken_bsn(cells[0]), *cells[1:]])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "bsn-mismatch")
    error = caught.value
    assert (error.file, error.line, error.column) == ("brp_persons.csv", 5, "bsn")
    assert "elfproef" in str(error)
    assert_safe(error, directory, {original, broken_bsn(original)})


def test_an_unsorted_persons_file(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    persons = directory / "brp_persons.csv"
    lines = persons.read_text(encoding="utf-8").split("\n")
    lines[2], lines[3] = lines[3], lines[2]
    persons.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "bsn-mismatch")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "brp_persons.csv",
        4,
        "bsn",
    )
    assert "sorted" in str(caught.value)
    assert_safe(caught.value, directory)


def test_a_bad_date_in_the_address_history(
    small_dataset: GenerationSummary, tmp_path: Path
) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "brp_addresses.csv", 7, lambda c: [c[0], "2026-13-01", *c[2:]])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "frequent-movers")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "brp_addresses.csv",
        7,
        "valid_from",
    )
    assert_safe(caught.value, directory)


def test_a_payroll_period_that_is_not_a_month(
    small_dataset: GenerationSummary, tmp_path: Path
) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "payroll.csv", 3, lambda c: [c[0], c[1][:8] + "15", *c[2:]])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "bsn-mismatch")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "payroll.csv",
        3,
        "payroll_period",
    )
    assert_safe(caught.value, directory)


def test_a_missing_column(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "brp_addresses.csv", 4, lambda c: c[:-1])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "frequent-movers")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "brp_addresses.csv",
        4,
        None,
    )
    assert "columns" in str(caught.value)
    assert_safe(caught.value, directory)


def test_a_wrong_header(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "hires.csv", 1, lambda c: [*c[:-1], "end"])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "admission")
    assert (caught.value.file, caught.value.line) == ("hires.csv", 1)
    assert "header" in str(caught.value)


def test_a_bad_loonheffingennummer_in_hires(
    small_dataset: GenerationSummary, tmp_path: Path
) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "hires.csv", 2, lambda c: [c[0], c[1].replace("L", "X"), *c[2:]])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "admission")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "hires.csv",
        2,
        "uitlener_loonheffingennummer",
    )
    assert_safe(caught.value, directory)


def test_a_bad_worker_bsn_in_hires(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    hires = directory / "hires.csv"
    original = hires.read_text(encoding="utf-8").split("\n")[1].split(",")[4]
    edit_line(hires, 2, lambda c: [*c[:4], broken_bsn(c[4]), *c[5:]])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "admission")
    assert caught.value.column == "worker_bsn"
    assert_safe(caught.value, directory, {original})


def test_an_admission_ending_before_it_starts(
    small_dataset: GenerationSummary, tmp_path: Path
) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    edit_line(directory / "uitlener_register.csv", 2, lambda c: [*c[:4], "2000-01-01"])
    with pytest.raises(MalformedInput) as caught:
        run_all(directory, "admission")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "uitlener_register.csv",
        2,
        "admitted_until",
    )


def test_a_missing_file(small_dataset: GenerationSummary, tmp_path: Path) -> None:
    directory = copy_dataset(small_dataset, tmp_path / "d")
    (directory / "payroll.csv").unlink()
    with pytest.raises(InputMissing, match=r"payroll\.csv"):
        run_all(directory, "bsn-mismatch")


def test_the_command_line_prints_one_line_without_a_bsn(
    small_dataset: GenerationSummary, tmp_path: Path
) -> None:
    from sigex.cli import main

    directory = copy_dataset(small_dataset, tmp_path / "d")
    persons = directory / "brp_persons.csv"
    original = persons.read_text(encoding="utf-8").split("\n")[9].split(",")[0]
    edit_line(persons, 10, lambda cells: [broken_bsn(cells[0]), *cells[1:]])
    out_file = tmp_path / "records.jsonl"
    result = CliRunner().invoke(
        main,
        ["data", "find", "--kind", "bsn-mismatch", "--in", str(directory), "--out", str(out_file)],
    )
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("sigex:")]
    assert error_lines == [
        "sigex: brp_persons.csv: line 10, column 'bsn': "
        "not a valid BSN (9 digits passing the elfproef)"
    ]
    assert original not in result.output
    assert broken_bsn(original) not in result.output
    assert not out_file.exists(), "a failed run leaves no partial output"
