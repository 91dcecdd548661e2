"""A party's TLS certificate and key as one PKCS#12 file, for a person's browser.

The auditor's console authenticates auditors by their federation certificate,
as every sigex service does. A browser imports a certificate with its key as
a password-protected PKCS#12 (``.p12``) file; ``sigex audit
browser-certificate`` writes one from the party's ``tls.pem`` and ``tls.key``,
with the federation CA beside it so that the browser shows the whole chain.
"""

from __future__ import annotations

from pathlib import Path

from sigex.identity._primitives import pkcs12_of
from sigex.identity.errors import IdentityError
from sigex.identity.keyfiles import read_private

MIN_PASSWORD = 8


def pkcs12_bundle(
    certificate: Path, key: Path, ca_certificate: Path, password: bytes, name: str
) -> bytes:
    """The certificate, its key and the CA as PKCS#12, encrypted with ``password``."""
    if len(password) < MIN_PASSWORD:
        raise IdentityError(f"the PKCS#12 password must have at least {MIN_PASSWORD} characters")
    try:
        return pkcs12_of(
            name.encode("utf-8"),
            read_private(key),
            certificate.read_bytes(),
            ca_certificate.read_bytes(),
            password,
        )
    except (OSError, ValueError) as error:
        raise IdentityError(f"cannot read the certificate, key or CA: {error}") from None
