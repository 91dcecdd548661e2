"""Reason codes have one home (sigex.reasons) and the docs' tables list exactly them.

An auditor reads a code in a dead letter or an access record and looks it up in the
docs; a code that is given but not explained, or explained but never given, misleads.
A copy of a code as a string constant elsewhere drifts from the enum; none may exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sigex.reasons import ReasonCode

ROOT = Path(__file__).resolve().parents[3]
SOURCE_FOLDERS = ("sigex", "broker", "consumers", "producers", "policies", "schemas")
CODE_TABLES = {
    # file, the heading that opens its table of reason codes
    "docs/policy.md": "### Reason codes",
    "docs/architecture.md": "### Reason codes the exchange adds",
}
_CODE = re.compile(r"`([A-Z][A-Z_]+)`")


def _table_codes(path: str, heading: str) -> set[str]:
    text = (ROOT / path).read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    codes: set[str] = set()
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            codes |= set(_CODE.findall(first_cell))
    return codes


def test_every_reason_code_is_explained_in_the_docs_and_nothing_else_is() -> None:
    documented: set[str] = set()
    for path, heading in CODE_TABLES.items():
        documented |= _table_codes(path, heading)
    given = {code.value for code in ReasonCode}
    assert given - documented == set(), "codes sigex gives that no table explains"
    assert documented - given == set(), "codes a table explains that sigex never gives"


def test_the_tables_are_found_and_hold_codes() -> None:
    # a renamed heading would make the test above compare against nothing
    for path, heading in CODE_TABLES.items():
        assert len(_table_codes(path, heading)) >= 5, path


def _string_constants(tree: ast.Module) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.append((target.id, value.value, node.lineno))
    return found


def test_no_module_keeps_its_own_copy_of_a_reason_code() -> None:
    codes = {code.value for code in ReasonCode}
    copies = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "sigex" / "reasons.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            copies += [
                f"{path.relative_to(ROOT)}:{line} {name} = {value!r}"
                for name, value, line in _string_constants(tree)
                if value in codes
            ]
    assert copies == []
