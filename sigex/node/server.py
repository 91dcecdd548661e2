"""Serving the node with uvicorn, on loopback or behind mutual TLS.

The client's certificate reaches the application through
:class:`sigex.http_tls.PeerCertificateH11`; :func:`sigex.node.access.client_of`
takes the client's name from it.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from sigex.http_tls import PeerCertificateH11, mutual_tls_options
from sigex.node.app import create_app
from sigex.node.service import PartnerNode


def server_config(node: PartnerNode) -> uvicorn.Config:
    settings = node.settings
    settings.check()
    options: dict[str, Any] = {}
    if settings.tls:
        assert settings.tls_cert and settings.tls_key and settings.client_ca  # check() saw to it
        options = mutual_tls_options(settings.tls_cert, settings.tls_key, settings.client_ca)
    return uvicorn.Config(
        create_app(node),
        host=settings.host,
        port=settings.port,
        http=PeerCertificateH11,
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
