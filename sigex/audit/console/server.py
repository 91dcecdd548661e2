"""Serving the console with uvicorn behind mutual TLS, beside the JSON API of ``sigex audit serve``.

The auditor's browser presents the auditor's federation certificate (the
AUDITOR party's, imported from ``sigex audit browser-certificate``); the
principal is its common name, counted only while its key generation is the
current one in the signed directory, exactly as for the JSON API.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import uvicorn
from starlette.types import Scope

from sigex.audit.api import principal_of
from sigex.audit.console.app import PrincipalOf
from sigex.audit.errors import AccessLogError
from sigex.http_tls import PeerCertificateH11, mutual_tls_options, peer_certificate


class ConsoleUnavailable(AccessLogError):
    """The console cannot be served (its port is taken, say)."""


def principal_from_certificate(generations: Callable[[], Mapping[str, int]] | None) -> PrincipalOf:
    """Who sent a request: the verified client certificate's party, of its current generation."""

    def principal(scope: Scope) -> str | None:
        current = generations() if generations is not None else None
        return principal_of(peer_certificate(scope), current)

    return principal


def console_server(
    app: object, host: str, port: int, certificate: Path, key: Path, client_ca: Path
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]  # an ASGI application
        host=host,
        port=port,
        http=PeerCertificateH11,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        **mutual_tls_options(certificate, key, client_ca),
    )
    return uvicorn.Server(config)


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: one the system picks)."""
    try:
        listening = socket.create_server((host, port), reuse_port=False)
    except OSError as error:
        raise ConsoleUnavailable(
            f"the console cannot listen on {host}:{port}: {error.strerror}"
        ) from None
    return listening
