"""Mutual TLS for the HTTP services served with uvicorn: who is on the other end.

uvicorn does not hand the client's certificate to the application, so the
services use a small subclass of uvicorn's h11 protocol that reads the
verified peer certificate when the connection is made and puts it into every
request's ASGI scope (:data:`PEER_CERTIFICATE_SCOPE_KEY`), in the form
:meth:`ssl.SSLSocket.getpeercert` gives it. The partner node takes the
client's name from it; the auditor's console its principal and key generation.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: the ASGI scope key under which the verified peer certificate is put (absent without TLS)
PEER_CERTIFICATE_SCOPE_KEY = "sigex.peer_certificate"


def subject_attributes(certificate: Mapping[str, Any] | None) -> dict[str, str]:
    """The subject's attributes (first of each name) of a ``getpeercert()`` dictionary."""
    attributes: dict[str, str] = {}
    for rdn in (certificate or {}).get("subject", ()):
        for name, value in rdn:
            attributes.setdefault(str(name), str(value))
    return attributes


def common_name(certificate: Mapping[str, Any] | None) -> str | None:
    """The subject's commonName of a certificate as :meth:`ssl.SSLSocket.getpeercert` gives it."""
    return subject_attributes(certificate).get("commonName")


def peer_certificate(scope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verified client certificate of the connection a request came on, if any."""
    found = scope.get(PEER_CERTIFICATE_SCOPE_KEY)
    return found if isinstance(found, dict) else None


class PeerCertificateH11(H11Protocol):
    """uvicorn's h11 protocol, telling the application which client certificate connected."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
        if not certificate:
            return
        app = self.app

        async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, PEER_CERTIFICATE_SCOPE_KEY: certificate}, receive, send)

        self.app = with_certificate


def mutual_tls_options(certificate: Path, key: Path, client_ca: Path) -> dict[str, Any]:
    """uvicorn.Config options for TLS with a client certificate from ``client_ca`` required."""
    return {
        "ssl_certfile": str(certificate),
        "ssl_keyfile": str(key),
        "ssl_ca_certs": str(client_ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
