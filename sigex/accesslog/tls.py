"""The audit API's TLS server identity, issued by the development federation's CA.

Party certificates are client certificates (no server usage, no names), so the
API needs its own: CN=AUDIT with the host names and addresses it serves on,
kept as ``api.pem`` / ``api.key`` (0600) beside the AUDIT party's other files.
In a production federation the operator issues it; in development
``sigex audit serve`` issues it from ``ca.key`` when it is missing.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sigex.accesslog.errors import AccessLogError
from sigex.clock import Clock
from sigex.identity import _primitives as primitives

API_CERT_FILE = "api.pem"
API_KEY_FILE = "api.key"
API_VALIDITY = timedelta(days=365)
_BACKDATE = timedelta(minutes=5)


def api_identity_paths(state_dir: Path) -> tuple[Path, Path]:
    folder = Path(state_dir) / "federation" / "parties" / "AUDIT"
    return folder / API_CERT_FILE, folder / API_KEY_FILE


def ensure_api_certificate(
    state_dir: Path, hosts: Sequence[str], clock: Clock
) -> tuple[Path, Path]:
    """The API's certificate and key paths, issuing them from the federation CA if missing."""
    certificate_path, key_path = api_identity_paths(state_dir)
    if certificate_path.exists() and key_path.exists():
        return certificate_path, key_path
    federation = Path(state_dir) / "federation"
    try:
        ca_key = primitives.load_tls_key((federation / "ca.key").read_bytes())
        ca_cert = primitives.load_certificate((federation / "ca.pem").read_bytes())
    except (OSError, primitives.CryptoFailure):
        raise AccessLogError(
            "serve: no API certificate and no federation CA key to issue one; pass --cert/--key"
        ) from None
    names = sorted({h for h in (*hosts, "localhost") if not _is_address(h)})
    addresses = sorted({h for h in (*hosts, "127.0.0.1") if _is_address(h)})
    key = primitives.new_tls_key()
    now = clock.now()
    certificate = primitives.leaf_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        key=key,
        name=primitives.party_name("AUDIT", "sigex audit API", None),
        not_before=now - _BACKDATE,
        not_after=now + API_VALIDITY,
        server_names=names,
        server_ips=addresses,
    )
    certificate_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(primitives.private_pem(key))
    certificate_path.write_bytes(primitives.certificate_pem(certificate))
    return certificate_path, key_path


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
