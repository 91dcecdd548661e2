"""Fixtures for envelope tests (TEST-ONLY keys from fixed seeds)."""

from __future__ import annotations

import pytest

from sigex.envelope.testing import Federation, make_federation


@pytest.fixture
def federation() -> Federation:
    return make_federation()
