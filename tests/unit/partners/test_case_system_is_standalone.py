"""The reference case system stays an honest example: the standard library only, no sigex."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import sigex.partners.case_system as case_system


def test_the_case_system_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(case_system.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported, "the parse found no imports at all"
    outside = {name for name in imported if name not in sys.stdlib_module_names}
    assert outside == set(), outside
    assert "sigex" not in imported


def test_the_outcome_is_chosen_from_the_signal_id_alone() -> None:
    first = case_system.outcome_for("00000000-0000-0000-0000-000000000001")
    assert first == case_system.outcome_for("00000000-0000-0000-0000-000000000001")
    assert first in case_system.OUTCOMES
    picks = {case_system.outcome_for(f"00000000-0000-0000-0000-{n:012d}") for n in range(50)}
    assert len(picks) > 1
