"""Unit tests are hermetic: what ``.ci/run`` exports for the integration tests stays out.

``.ci/run`` exports ``SIGEX_BOOTSTRAP`` so that the integration tests share its broker. A
command under unit test that honours that variable (``sigex audit verify`` reads published
checkpoints from a configured broker) would then reach the CI broker with the test's own
federation, which that broker does not trust. Each unit test starts without it; a test
that wants a broker asks for ``kafka_bootstrap``, a session fixture that read the variable
before this one runs.
"""

from __future__ import annotations

import pytest

_FROM_THE_CI_ENVIRONMENT = (
    "SIGEX_BOOTSTRAP",
    "SIGEX_AUDIT_DB",
    "SIGEX_AUDIT_DB_PASSWORD_FILE",
    "SIGEX_SECURITY",
)


@pytest.fixture(autouse=True)
def _without_the_ci_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _FROM_THE_CI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
