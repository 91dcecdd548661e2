"""The one module of the access log that imports ``cryptography.hazmat``.

Checkpoint signing keys are Ed25519. The primitives themselves live in
:mod:`sigex.identity._primitives`; this module reuses them and adds the few
key operations only the access log needs (raw public bytes of a public key,
PEM parsing whose failures the callers report in their own words).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sigex.identity import _primitives as primitives

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "generate_signing_key",
    "load_pem_private_key",
    "load_pem_public_key",
    "public_key_pem",
    "raw_public_bytes",
    "sign",
    "verify",
]


def generate_signing_key() -> Ed25519PrivateKey:
    return primitives.new_signing_key()


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return primitives.sign(key, message)


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature over ``message``."""
    try:
        primitives.verify_signature(key, signature, message)
    except primitives.CryptoFailure:
        return False
    return True


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return primitives.public_pem(key)


def load_pem_public_key(data: bytes) -> object:
    """Any public key from PEM; raises ``ValueError`` on malformed input."""
    return serialization.load_pem_public_key(data)


def load_pem_private_key(data: bytes) -> object:
    """Any unencrypted private key from PEM; raises ``ValueError`` or ``TypeError``."""
    return serialization.load_pem_private_key(data, password=None)
