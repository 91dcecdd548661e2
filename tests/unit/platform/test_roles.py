"""The exchange's own principals are named once, in sigex.roles.Role.

Their names are certificate CNs, Kafka principals and directory entries: a second
spelling somewhere ("AUDIT" typed again) drifts the day one changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sigex.roles import Role

ROOT = Path(__file__).resolve().parents[3]
SOURCE_FOLDERS = ("sigex", "broker", "consumers", "producers", "policies", "schemas")


def test_no_source_module_spells_a_role_itself() -> None:
    names = {role.value for role in Role}
    spelled = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "sigex" / "roles.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in names:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert spelled == []


def test_the_roles_are_the_four_principals_of_the_federation() -> None:
    assert [role.value for role in Role] == ["ADMIN", "BROKER", "GATEWAY", "AUDIT"]
