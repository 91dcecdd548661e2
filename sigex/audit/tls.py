"""The audit API's TLS server identity, issued by ``sigex keys init``.

Party certificates are client certificates (no server usage, no names), so the
API has its own: CN=AUDIT for ``localhost``, ``127.0.0.1`` and the extra host
names given to ``keys init``, kept as ``api.pem`` / ``api.key`` (0600) beside
the AUDIT party's other files (see :mod:`sigex.identity.audit_files`). In a
production federation the operator issues it. ``sigex audit serve`` only
loads it; it never issues a certificate itself.
"""

from __future__ import annotations

from pathlib import Path

from sigex.audit.errors import ApiIdentityMissing
from sigex.identity.audit_files import AUDIT_API_CERTIFICATE, AUDIT_API_KEY
from sigex.identity.keyfiles import check_private


def api_identity_paths(state_dir: Path) -> tuple[Path, Path]:
    federation = Path(state_dir) / "federation"
    return federation / AUDIT_API_CERTIFICATE, federation / AUDIT_API_KEY


def api_identity(
    state_dir: Path, certificate: Path | None = None, key: Path | None = None
) -> tuple[Path, Path]:
    """The API's certificate and key paths (given, else the federation's); both must exist.

    The key must be private to its owner (mode 0600), as any private key sigex uses.
    """
    default_certificate, default_key = api_identity_paths(state_dir)
    certificate = certificate or default_certificate
    key = key or default_key
    for path in (certificate, key):
        if not path.is_file():
            raise ApiIdentityMissing(path)
    check_private(key)
    return certificate, key
