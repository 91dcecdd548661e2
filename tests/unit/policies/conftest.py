"""The shipped policy, compiled once per session, and broken copies of it for the compiler tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import POLICY_DIRECTORY, load_policy

ALLOWED = "ALLOWED"

# Every shipped agreement with a concrete sender and recipient, and a day before,
# inside and after its validity; what the domain brief expects inside it.
SHIPPED = [
    # agreement id, sender, recipient, signal, purpose, before, inside, after, inside answer
    ("LAA-FREQUENT-MOVER", "RVIG", "GM0363", "laa.frequent-mover", "LAA_SIGNAAL",
     "2023-12-31", "2027-02-01", "2029-01-01", ALLOWED),
    ("LAA-INVESTIGATION-OUTCOME", "GM0599", "RVIG", "laa.investigation-outcome",
     "LAA_TERUGKOPPELING", "2023-12-31", "2027-02-01", "2029-01-01", ALLOWED),
    ("PAYROLL-MISMATCH-MUNICIPALITY", "UWV", "GM1894", "payroll.bsn-mismatch",
     "BRP_TERUGMELDING", "2024-12-31", "2027-02-01", "2029-01-01", ALLOWED),
    ("PAYROLL-MISMATCH-NLA", "UWV", "NLA", "payroll.bsn-mismatch", "SUWI64_ARB",
     "2024-12-31", "2027-02-01", "2028-01-01", ALLOWED),
    ("PAYROLL-MISMATCH-BD", "UWV", "BD", "payroll.bsn-mismatch", "SUWI64_FISC",
     "2024-12-31", "2027-02-01", "2028-01-01", ALLOWED),
    ("PAYROLL-BSN-FEEDBACK", "UWV", "RVIG", "payroll.bsn-mismatch", "LA_BSN_FEEDBACK",
     "2024-12-31", "2027-02-01", "2029-01-01", "BASIS_UNDER_REVIEW"),
    ("WAADI-BD-SUWI64", "NLA", "BD", "waadi.admission-violation", "SUWI64_FISC",
     "2024-12-31", "2026-06-01", "2027-01-01", ALLOWED),
    ("WAADI-UWV-SUWI64", "NLA", "UWV", "waadi.admission-violation", "SUWI64_SZ",
     "2024-12-31", "2026-06-01", "2027-01-01", ALLOWED),
    ("WAADI-BD-WTTA", "NLA", "BD", "waadi.admission-violation", "WTTA_TOEZICHT",
     "2026-12-31", "2027-02-01", "2032-01-01", ALLOWED),
    ("WAADI-BD-WTTA", "JUSTIS", "BD", "waadi.admission-violation", "WTTA_TOEZICHT",
     "2026-12-31", "2027-02-01", "2032-01-01", ALLOWED),
    ("WAADI-UWV-WTTA", "NLA", "UWV", "waadi.admission-violation", "WTTA_TOEZICHT",
     "2026-12-31", "2027-02-01", "2032-01-01", ALLOWED),
    ("WAADI-UWV-WTTA", "JUSTIS", "UWV", "waadi.admission-violation", "WTTA_TOEZICHT",
     "2026-12-31", "2027-02-01", "2032-01-01", ALLOWED),
    ("WAADI-JUSTIS-WTTA", "NLA", "JUSTIS", "waadi.admission-violation", "WTTA_TOEZICHT",
     "2026-12-31", "2027-02-01", "2032-01-01", ALLOWED),
]  # fmt: skip


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
