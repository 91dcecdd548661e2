"""``sigex data generate`` and ``sigex data find`` end to end on a small dataset."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sigex.cli import main
from sigex.identifiers import is_valid_bsn
from sigex.partners.synthetic.generator import MANIFEST


def test_generate_then_find_every_kind(tmp_path: Path) -> None:
    runner = CliRunner()
    dataset = tmp_path / "dataset"
    result = runner.invoke(
        main, ["data", "generate", "--people", "4000", "--seed", "21", "--out", str(dataset)]
    )
    assert result.exit_code == 0, result.output
    assert "planted patterns" in result.output
    planted = json.loads((dataset / MANIFEST).read_text(encoding="utf-8"))["planted"]
    expected = {
        "frequent-movers": planted["frequent_movers"],
        "bsn-mismatch": planted["bsn_unknown_in_brp"]
        + planted["non_resident_without_address"]
        + planted["non_resident_not_in_payroll"]
        + planted["name_or_birthdate_differs"],
        "admission": planted["lending_without_admission"]
        + planted["hiring_from_non_admitted"]
        + planted["workers_missing_from_administration"],
    }
    for kind, count in expected.items():
        out_file = tmp_path / f"{kind}.jsonl"
        result = runner.invoke(
            main, ["data", "find", "--kind", kind, "--in", str(dataset), "--out", str(out_file)]
        )
        assert result.exit_code == 0, result.output
        lines = out_file.read_text(encoding="utf-8").splitlines()
        assert len(lines) == count > 0, kind
        assert f"{count:,} records" in result.output
        first = json.loads(lines[0])
        assert first["detected_at"].endswith("Z")
        if kind != "admission":
            assert is_valid_bsn(first["bsn"])
