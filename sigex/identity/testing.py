"""FOR TESTS ONLY: party identities derived from fixed seeds, and a directory for them.

These keys are public knowledge (anyone can derive them from the seed) and must
never protect real data. Golden vectors and unit tests use them so that
nothing secret has to be committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sigex.identity import _primitives as primitives
from sigex.identity.directory import PartyDirectory, PartyEntry, PublicKeyRecord
from sigex.identity.federation import PartyIdentity

TEST_ONLY_LABEL = b"sigex TEST-ONLY key derivation; never for real data\x00"


def _seed(kind: bytes, code: str, seed: bytes) -> bytes:
    return hashlib.sha256(
        TEST_ONLY_LABEL + kind + b"\x00" + code.encode() + b"\x00" + seed
    ).digest()


def fixed_identity(code: str, seed: bytes, oin: str = "00000099000000000000") -> PartyIdentity:
    """A TEST-ONLY identity whose keys follow from ``code`` and ``seed``; no TLS files."""
    return PartyIdentity(
        code=code,
        oin=oin,
        signing_key=primitives.signing_key_from_seed(_seed(b"signing", code, seed)),
        encryption_key=primitives.encryption_key_from_seed(_seed(b"encryption", code, seed)),
        retired_encryption_keys=(),
        tls_key=None,
        tls_certificate=None,
        client_pem=None,
        ca_certificate=None,
    )


def directory_for(
    identities: Sequence[PartyIdentity],
    not_before: datetime,
    not_after: datetime,
    *,
    revoked_at: datetime | None = None,
    revoked_codes: frozenset[str] = frozenset(),
) -> PartyDirectory:
    """A directory listing the identities' current keys (TEST-ONLY; unsigned, in memory)."""
    entries = []
    for identity in identities:
        revoked = revoked_at if identity.code in revoked_codes else None
        signing = primitives.raw_public_signing(identity.signing_key)
        encryption = primitives.raw_public_encryption(identity.encryption_key)
        entries.append(
            PartyEntry(
                code=identity.code,
                name=f"test party {identity.code}",
                oin=identity.oin,
                kind="test",
                signing_keys=(
                    PublicKeyRecord(
                        primitives.key_id(signing), signing, not_before, not_after, revoked
                    ),
                ),
                encryption_keys=(
                    PublicKeyRecord(
                        primitives.key_id(encryption), encryption, not_before, not_after, revoked
                    ),
                ),
            )
        )
    return PartyDirectory(issued_at=not_before, parties=tuple(entries))
