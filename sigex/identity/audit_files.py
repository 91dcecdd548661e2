"""The audit service's own secrets, made once by ``sigex keys init``.

* ``parties/AUDIT/pseudonym.key``: 32 random bytes, the HMAC key of every data
  subject's audit pseudonym. The gateway and the audit indexer must share it
  for the life of the access log: a second key would split every person's
  records in two, so nothing ever makes one on the fly.
* ``parties/AUDIT/api.pem`` / ``api.key``: the audit API's TLS server
  certificate (CN=AUDIT, server and client authentication) for ``localhost``,
  ``127.0.0.1`` and the extra host names given to ``keys init``.

Both live in the federation folder, so the federation backup holds them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sigex.identity import _primitives as primitives
from sigex.identity.keyfiles import write_private
from sigex.roles import Role

AUDIT_PSEUDONYM_KEY = Path("parties") / Role.AUDIT / "pseudonym.key"
AUDIT_API_CERTIFICATE = Path("parties") / Role.AUDIT / "api.pem"
AUDIT_API_KEY = Path("parties") / Role.AUDIT / "api.key"
AUDIT_PSEUDONYM_KEY_BYTES = 32
API_VALIDITY = timedelta(days=365)
_BACKDATE = timedelta(minutes=5)


def write_audit_pseudonym_key(federation: Path) -> Path:
    """Create the audit pseudonym key (0600); never replaces an existing one."""
    path = federation / AUDIT_PSEUDONYM_KEY
    _private_folder(path.parent)
    write_private(path, os.urandom(AUDIT_PSEUDONYM_KEY_BYTES), exclusive=True)
    return path


def write_audit_api_identity(
    federation: Path,
    ca_key: primitives.TlsPrivateKey,
    ca_cert: primitives.Certificate,
    now: datetime,
    extra_hosts: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Issue the audit API's server certificate from the federation CA; (cert, key) paths."""
    names = sorted({h for h in ("localhost", *extra_hosts) if not _is_address(h)})
    addresses = sorted({h for h in ("127.0.0.1", *extra_hosts) if _is_address(h)})
    key = primitives.new_tls_key()
    certificate = primitives.leaf_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        key=key,
        name=primitives.party_name(Role.AUDIT, "sigex audit API", None),
        not_before=now - _BACKDATE,
        not_after=now + API_VALIDITY,
        server_names=names,
        server_ips=addresses,
    )
    certificate_path = federation / AUDIT_API_CERTIFICATE
    key_path = federation / AUDIT_API_KEY
    _private_folder(certificate_path.parent)
    write_private(key_path, primitives.private_pem(key))
    certificate_path.write_bytes(
        primitives.certificate_pem(certificate) + primitives.certificate_pem(ca_cert)
    )
    return certificate_path, key_path


def _private_folder(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
