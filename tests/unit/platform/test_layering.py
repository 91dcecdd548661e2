"""What the import-linter contracts in pyproject.toml cannot say (they run in `make lint`).

- Every import of sigex's own code goes through the ``sigex`` namespace. The card's
  folders (broker/, schemas/, ...) are importable under their bare names only from a
  checkout's root, where a bare ``import broker`` would work in the tests and break in
  the installed wheel, beside PyPI's package of that name.
- ``cryptography.hazmat`` is imported only by private modules (file name starting
  with ``_``), which wrap it in typed, misuse-resistant functions.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"][
    "setuptools"
]["package-dir"]
CARD_FOLDERS = {folder for package, folder in PACKAGE_DIRS.items() if package != "sigex"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (REPO / folder).rglob("*.py"))


def test_the_card_folders_are_mapped_into_the_namespace() -> None:
    assert {"broker", "schemas", "producers", "consumers", "policies"} == CARD_FOLDERS


def test_nothing_imports_a_card_folder_by_its_bare_name() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in _python_files("sigex", *CARD_FOLDERS, "tests", "bench", "docker", "tools")
        for name in _imports(path)
        if name.split(".")[0] in CARD_FOLDERS
    ]
    assert offenders == []


def test_hazmat_stays_in_the_private_primitives_modules() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in _python_files("sigex", *CARD_FOLDERS)
        if not path.name.startswith("_")
        and any(name.startswith("cryptography.hazmat") for name in _imports(path))
    ]
    assert offenders == []


def test_the_scan_sees_the_code() -> None:
    assert len(_python_files("sigex", *CARD_FOLDERS)) > 100
