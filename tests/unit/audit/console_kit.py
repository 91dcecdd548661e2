"""A console over a seeded access log, for the console's page tests (no TLS, no browser)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from sigex.audit.console.app import create_console_app
from sigex.audit.console.consultations import ConsultationLog
from sigex.audit.console.service import AuditConsole
from sigex.audit.store import AccessLogStore
from sigex.audit.witness_policy import Witnessing
from sigex.clock import Clock
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.policies.compiler import load_policy

PRINCIPAL_KEY = "tests.principal"
ORIGIN = "http://testserver"
PARTY_KINDS = {
    "AUDITOR": "auditor",
    "GM0363": "municipality",
    "RVIG": "supervisor",
    "NLA": "supervisor",
    "BD": "supervisor",
}


class AsPrincipal:
    """Puts the principal named in the ``x-test-principal`` header into the scope (tests only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers", []))
            principal = headers.get(b"x-test-principal")
            scope = {**scope, PRINCIPAL_KEY: principal.decode() if principal else None}
        await self.app(scope, receive, send)


@dataclass
class ConsoleKit:
    client: TestClient
    console: AuditConsole
    location: str

    def get(self, path: str, principal: str | None = "AUDITOR", **params: Any) -> Any:
        headers = {"x-test-principal": principal} if principal else {}
        return self.client.get(path, headers=headers, params=params, follow_redirects=False)

    def post(
        self,
        path: str,
        form: Mapping[str, str],
        principal: str | None = "AUDITOR",
        origin: str | None = ORIGIN,
    ) -> Any:
        headers = {"x-test-principal": principal} if principal else {}
        if origin is not None:
            headers["origin"] = origin
        return self.client.post(path, data=dict(form), headers=headers, follow_redirects=False)

    def open_store(self) -> AccessLogStore:
        return AccessLogStore.open(self.location)


@contextmanager
def console_kit(
    location: str,
    pseudonymiser: SubjectPseudonymiser,
    clock: Clock,
    signing_key: Ed25519PrivateKey | None,
    verification_file: Path,
    *,
    open_store: Any = None,
    witnessing: Witnessing | None = None,
) -> Iterator[ConsoleKit]:
    console = AuditConsole(
        open_store=open_store or (lambda: AccessLogStore.open(location)),
        party_kinds=PARTY_KINDS,
        party_names={"GM0363": "Gemeente Amsterdam", "NLA": "Nederlandse Arbeidsinspectie"},
        pseudonymiser=pseudonymiser,
        policy=load_policy(),
        consultations=ConsultationLog(clock, signing_key),
        clock=clock,
        verification_file=verification_file,
        trusted_keys=signing_key.public_key() if signing_key is not None else None,
        witnessing=witnessing,
    )
    app = create_console_app(console, lambda scope: scope.get(PRINCIPAL_KEY))
    with TestClient(AsPrincipal(app), raise_server_exceptions=False) as client:
        yield ConsoleKit(client, console, location)
