"""The shipped policy, compiled once per session, and broken copies of it for the compiler tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policies.compiled import CompiledPolicy
from policies.compiler import POLICY_DIRECTORY, load_policy


@pytest.fixture(scope="session")
def policy() -> CompiledPolicy:
    return load_policy()


def copy_policy(tmp_path: Path) -> Path:
    """A copy of the shipped policy files (YAML only) that a test may break."""
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIRECTORY, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    return copy_policy(tmp_path)
