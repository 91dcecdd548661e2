"""``sigex policy explain``: the right answer with reasons, for each shipped agreement."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.cli import main
from sigex.cli.policy import policy as policy_group

from .conftest import ALLOWED, SHIPPED  # type: ignore[import-not-found]

IDS = [f"{row[0]}:{row[1]}" for row in SHIPPED]


def explain(sender: str, signal: str, recipient: str, purpose: str, day: str) -> tuple[int, str]:
    arguments = ["explain", "--sender", sender, "--signal", signal, "--recipient", recipient,
                 "--purpose", purpose, "--at", day]  # fmt: skip
    result = CliRunner().invoke(policy_group, arguments)
    # stdout alone: a Kafka client another test left behind may log to stderr meanwhile
    return result.exit_code, result.stdout


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_explain_before_inside_and_after(row: tuple[str, ...]) -> None:
    agreement_id, sender, recipient, signal, purpose, before, inside, after, answer = row
    for day in (before, after):
        code, output = explain(sender, signal, recipient, purpose, day)
        assert code == 1, output
        assert output.startswith(f"REFUSED: {sender} -> {recipient}, signal {signal}")
        assert f"on {day}" in output
        assert f"agreement: {agreement_id} version 1" in output
        assert "[OUTSIDE_VALIDITY]" in output
        assert "fields disclosed: none" in output
    code, output = explain(sender, signal, recipient, purpose, inside)
    if answer == ALLOWED:
        assert code == 0, output
        assert output.startswith("ALLOWED: ")
        assert "[ALLOWED]" in output
        assert "retention: " in output
    else:
        assert code == 1
        assert f"[{answer}]" in output
    assert f"agreement: {agreement_id} version 1" in output


def test_explain_names_the_classification_it_refuses() -> None:
    result = CliRunner().invoke(
        policy_group,
        ["explain", "--sender", "NLA", "--signal", "waadi.admission-violation", "--recipient",
         "BD", "--purpose", "WTTA_TOEZICHT", "--at", "2027-02-01", "--classification",
         "criminal"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "classified criminal" in result.output
    assert "[CLASSIFICATION_NOT_ALLOWED]" in result.output


def test_explain_accepts_a_moment_with_a_time_zone() -> None:
    arguments = ["explain", "--sender", "NLA", "--signal", "waadi.admission-violation",
                 "--recipient", "BD", "--purpose", "WTTA_TOEZICHT"]  # fmt: skip
    allowed = CliRunner().invoke(policy_group, [*arguments, "--at", "2026-12-31T23:00:00+00:00"])
    assert allowed.exit_code == 0, allowed.output
    refused = CliRunner().invoke(policy_group, [*arguments, "--at", "2026-12-31T22:59:59+00:00"])
    assert refused.exit_code == 1


def test_a_bad_moment_is_a_usage_error_through_the_main_command() -> None:
    result = CliRunner().invoke(
        main,
        ["policy", "explain", "--sender", "NLA", "--signal", "x", "--recipient", "BD",
         "--purpose", "P", "--at", "yesterday"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--at must be a date" in result.output


def test_a_broken_policy_is_a_one_line_error_for_explain(tmp_path: Path) -> None:
    from .conftest import copy_policy  # type: ignore[import-not-found]

    root = copy_policy(tmp_path)
    (root / "purposes.yaml").write_text("purposes: [")
    result = CliRunner().invoke(
        main,
        ["policy", "explain", "--sender", "NLA", "--signal", "x", "--recipient", "BD",
         "--purpose", "P", "--directory", str(root)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "policy does not compile" in result.output


def test_routes_lists_the_routes_of_a_signal() -> None:
    result = CliRunner().invoke(policy_group, ["routes", "--signal", "payroll.bsn-mismatch"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "payroll.bsn-mismatch\tUWV\tNLA\tSUWI64_ARB\tPAYROLL-MISMATCH-NLA v1" in lines
    assert all(line.startswith("payroll.bsn-mismatch\t") for line in lines)
