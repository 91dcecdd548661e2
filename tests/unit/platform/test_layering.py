"""The direction of imports between packages, as docs/architecture.md describes it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
KAFKA_FACING = ("broker", "producers", "consumers")
CORE = ("sigex", "schemas", "policies")
COMMAND_LINE_MODULES = {"cli.py", "demo.py", "config_cli.py", "data_cli.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_only_the_kafka_facing_layer_imports_kafka() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in CORE
        for path in _modules(package)
        if any(name == "kafka" or name.startswith("kafka.") for name in _imports(path))
    ]
    assert offenders == []


def test_the_core_never_imports_the_kafka_facing_layer() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in CORE
        for path in _modules(package)
        if path.name not in COMMAND_LINE_MODULES
        and any(name.split(".")[0] in KAFKA_FACING for name in _imports(path))
    ]
    assert offenders == []


def test_hazmat_stays_in_the_private_primitives_modules() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in (*CORE, *KAFKA_FACING)
        for path in _modules(package)
        if not path.name.startswith("_")
        and any(name.startswith("cryptography.hazmat") for name in _imports(path))
    ]
    assert offenders == []


def test_the_layering_test_sees_the_packages() -> None:
    assert _modules("sigex") and _modules("broker")
