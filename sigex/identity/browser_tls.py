"""A party's TLS certificate and key as one PKCS#12 file, for a person's browser.

The auditor's console authenticates auditors by their federation certificate,
as every sigex service does. A browser imports a certificate with its key as
a password-protected PKCS#12 (``.p12``) file; ``sigex audit
browser-certificate`` writes one from the party's ``tls.pem`` and ``tls.key``,
with the federation CA beside it so that the browser shows the whole chain.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    load_pem_private_key,
    pkcs12,
)

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
        leaf = x509.load_pem_x509_certificate(certificate.read_bytes())
        authority = x509.load_pem_x509_certificate(ca_certificate.read_bytes())
        private = load_pem_private_key(read_private(key), password=None)
    except (OSError, ValueError) as error:
        raise IdentityError(f"cannot read the certificate, key or CA: {error}") from None
    return pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"),
        private,  # type: ignore[arg-type]  # the party's TLS key is EC or RSA, never X25519
        leaf,
        [authority],
        BestAvailableEncryption(password),
    )
