"""Serving the node with uvicorn, on loopback or behind mutual TLS.

uvicorn does not hand the client's certificate to the application, so the
node's HTTP protocol (a small subclass of uvicorn's h11 protocol) reads the
verified certificate's common name when the connection is made and puts it
into every request's scope (:data:`sigex.node.access.CLIENT_NAME_SCOPE_KEY`).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sigex.node.access import CLIENT_NAME_SCOPE_KEY
from sigex.node.app import create_app
from sigex.node.service import PartnerNode


def common_name(certificate: dict[str, Any] | None) -> str | None:
    """The subject's commonName of a certificate as :meth:`ssl.SSLSocket.getpeercert` gives it."""
    for rdn in (certificate or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class ClientCertificateH11(H11Protocol):
    """uvicorn's h11 protocol, telling the application which client certificate connected."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        name = common_name(ssl_object.getpeercert()) if ssl_object is not None else None
        if name is None:
            return
        app = self.app

        async def with_client(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, CLIENT_NAME_SCOPE_KEY: name}, receive, send)

        self.app = with_client


def server_config(node: PartnerNode) -> uvicorn.Config:
    settings = node.settings
    settings.check()
    options: dict[str, Any] = {}
    if settings.tls:
        options = {
            "ssl_certfile": str(settings.tls_cert),
            "ssl_keyfile": str(settings.tls_key),
            "ssl_ca_certs": str(settings.client_ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    return uvicorn.Config(
        create_app(node),
        host=settings.host,
        port=settings.port,
        http=ClientCertificateH11,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        **options,
    )


def serve(node: PartnerNode) -> None:
    """Run the node until SIGINT or SIGTERM."""
    uvicorn.Server(server_config(node)).run()
