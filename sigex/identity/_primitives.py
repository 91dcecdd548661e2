"""The one module of sigex that imports ``cryptography.hazmat``.

Identity (key files, certificates, the signed directory) and the envelope
(signatures, key wrapping, AES-256-GCM) both call these small functions, so
the primitives and their parameters are chosen in one place. Keys cross this
boundary as opaque key objects or as raw bytes; nothing here knows about
parties, agreements or envelopes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "AESGCM",
    "Certificate",
    "CryptoFailure",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "TlsPrivateKey",
    "X25519PrivateKey",
    "X25519PublicKey",
    "aead",
    "hpke_unwrap",
    "hpke_wrap",
]

TlsPrivateKey = ec.EllipticCurvePrivateKey
Certificate = x509.Certificate

#: RFC 9180 suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (0x0020, 0x0001, 0x0002).
_HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_ENC_LENGTH = 32
AEAD_TAG_LENGTH = 16


class CryptoFailure(Exception):
    """A primitive refused its input (bad tag, bad signature, malformed key).

    Deliberately not a SigexError: callers translate it into their own opaque error.
    """


# --- Ed25519 ---------------------------------------------------------------------------------


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signing_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """A signing key from 32 fixed bytes; for test vectors only."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def verifying_key(raw_public: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw_public)
    except ValueError as error:
        raise CryptoFailure("malformed Ed25519 public key") from error


def verify_signature(key: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    try:
        key.verify(signature, message)
    except InvalidSignature as error:
        raise CryptoFailure("signature does not verify") from error


def raw_public_signing(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


# --- X25519 and HPKE key wrapping --------------------------------------------------------------


def new_encryption_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def encryption_key_from_seed(seed: bytes) -> X25519PrivateKey:
    """An encryption key from 32 fixed bytes; for test vectors only."""
    return X25519PrivateKey.from_private_bytes(seed)


def raw_public_encryption(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def encryption_public_key(raw_public: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw_public)
    except ValueError as error:
        raise CryptoFailure("malformed X25519 public key") from error


def hpke_wrap(recipient: X25519PublicKey, secret: bytes, info: bytes) -> bytes:
    """RFC 9180 base-mode single-shot seal of ``secret``: ``enc (32) || ciphertext || tag``."""
    return _HPKE_SUITE.encrypt(secret, recipient, info=info)


def hpke_unwrap(recipient: X25519PrivateKey, wrapped: bytes, info: bytes) -> bytes:
    try:
        return _HPKE_SUITE.decrypt(wrapped, recipient, info=info)
    except (InvalidTag, ValueError) as error:
        raise CryptoFailure("wrapped key does not open") from error


# --- AES-256-GCM ------------------------------------------------------------------------------


def aead(key: bytes) -> AESGCM:
    """An AES-256-GCM cipher object; callers keep it, so the key schedule runs once per key."""
    if len(key) != 32:
        raise CryptoFailure("data key must be 32 bytes")
    return AESGCM(key)


def aead_open(cipher: AESGCM, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return cipher.decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as error:
        raise CryptoFailure("ciphertext does not open") from error


# --- key files --------------------------------------------------------------------------------


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey | TlsPrivateKey) -> bytes:
    """PKCS#8, unencrypted PEM (file permissions protect it; Kafka's PEM keystore reads it)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_signing_key(pem: bytes) -> Ed25519PrivateKey:
    key = _load_private(pem)
    if not isinstance(key, Ed25519PrivateKey):
        raise CryptoFailure("not an Ed25519 private key")
    return key


def load_encryption_key(pem: bytes) -> X25519PrivateKey:
    key = _load_private(pem)
    if not isinstance(key, X25519PrivateKey):
        raise CryptoFailure("not an X25519 private key")
    return key


def load_tls_key(pem: bytes) -> TlsPrivateKey:
    key = _load_private(pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoFailure("not an EC private key")
    return key


def load_verifying_key_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise CryptoFailure("malformed public key file") from error
    if not isinstance(key, Ed25519PublicKey):
        raise CryptoFailure("not an Ed25519 public key")
    return key


def _load_private(pem: bytes) -> object:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CryptoFailure("malformed private key file") from error


# --- X.509 for mutual TLS ---------------------------------------------------------------------


def new_tls_key() -> TlsPrivateKey:
    """ECDSA P-256: every TLS stack Kafka clients and brokers use accepts it."""
    return ec.generate_private_key(ec.SECP256R1())


#: the organizational unit that names a certificate's key generation: ``key-generation-<N>``
KEY_GENERATION_UNIT = "key-generation-"


def party_name(
    code: str, organisation: str, oin: str | None, generation: int | None = None
) -> x509.Name:
    """C=NL, O=<name>, serialNumber=<OIN>, OU=key-generation-<N>, CN=<CODE>, in that order.

    RFC 4514/2253 strings list the last attribute first, so Kafka's principal
    string starts with ``CN=<CODE>,OU=key-generation-<N>,`` (or ``CN=<CODE>,``
    for a name without a generation).
    """
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    if oin is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    if generation is not None:
        attributes.append(
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, f"{KEY_GENERATION_UNIT}{generation}"
            )
        )
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, code))
    return x509.Name(attributes)


def ca_certificate(
    key: TlsPrivateKey, name: x509.Name, not_before: _dt.datetime, not_after: _dt.datetime
) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def leaf_certificate(
    *,
    ca_key: TlsPrivateKey,
    ca_cert: x509.Certificate,
    key: TlsPrivateKey,
    name: x509.Name,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    server_names: Sequence[str] = (),
    server_ips: Sequence[str] = (),
) -> x509.Certificate:
    """A client certificate, or a server certificate when names or addresses are given."""
    import ipaddress  # noqa: PLC0415 - only the broker identity needs it

    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names or server_ips:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        alternatives += [x509.IPAddress(ipaddress.ip_address(a)) for a in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise CryptoFailure("malformed certificate") from error


def key_id(raw_public: bytes) -> bytes:
    """Eight bytes naming a public key: the start of its SHA-256."""
    return hashlib.sha256(raw_public).digest()[:8]


def pkcs12_of(
    name: bytes, key_pem: bytes, certificate_pem: bytes, ca_pem: bytes, password: bytes
) -> bytes:
    """A PEM TLS key, its certificate and the CA as one password-encrypted PKCS#12 blob."""
    private = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return pkcs12.serialize_key_and_certificates(
        name,
        private,
        x509.load_pem_x509_certificate(certificate_pem),
        [x509.load_pem_x509_certificate(ca_pem)],
        serialization.BestAvailableEncryption(password),
    )
