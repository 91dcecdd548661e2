"""The signed party directory: who the parties are, their public keys and when each key is valid.

The federation operator signs the directory with an Ed25519 key; a loader
checks that signature against the operator's public key, which it gets from
somewhere other than the directory file itself. Key validity follows two rules:

* a key verifies what was signed inside its period ``[not_before, not_after)``,
  so an old key keeps verifying what it signed before a rotation;
* a revoked key verifies nothing once its revocation time has passed, whatever
  time the signature claims (a thief could backdate it).

An encryption key whose period has ended also carries a destruction date: the
end of its period plus the longest retention of the data sealed to it. Once
that date has passed, ``sigex keys shred`` destroys the private key and
records when (``destroyed_at``), so what was sealed to it can never be opened
again (crypto-shredding).

Each party also has a key *generation* (1 at first, one more at every
revocation). Its TLS certificate names that generation, the broker makes it
part of the Kafka principal (``User:NLA.g2``), and ACLs are compiled only for
the generation the directory lists; so a revoked certificate loses its broker
access as soon as the ACLs are provisioned again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sigex.canonical import canonical_json
from sigex.identity import _primitives as primitives
from sigex.identity.errors import DirectoryError, NoValidKey, UnknownParty

DIRECTORY_FORMAT = "sigex-directory/1"
FIRST_GENERATION = 1
_SIGNATURE_CONTEXT = b"sigex party directory v1\x00"


@dataclass(frozen=True, slots=True)
class PublicKeyRecord:
    """One public key of a party with its validity period and optional revocation time."""

    key_id: bytes
    public_key: bytes
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    #: when the private key is to be destroyed: end of period plus the longest retention
    destroy_after: datetime | None = None
    #: when the private key was destroyed; nothing sealed to it opens any more
    destroyed_at: datetime | None = None

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise DirectoryError("a public key must be 32 raw bytes")
        if self.key_id != primitives.key_id(self.public_key):
            raise DirectoryError("a key id does not match its public key")
        if self.not_after <= self.not_before:
            raise DirectoryError("a key's validity period is empty")
        if self.destroy_after is not None and self.destroy_after < self.not_after:
            raise DirectoryError("a key's destruction date lies inside its period")

    @property
    def destroyed(self) -> bool:
        return self.destroyed_at is not None

    def in_period(self, at: datetime) -> bool:
        return self.not_before <= at < self.not_after

    def revoked_by(self, at: datetime) -> bool:
        return self.revoked_at is not None and at >= self.revoked_at

    def usable_at(self, at: datetime) -> bool:
        """Valid for new use at ``at``: inside its period, not revoked by then, not destroyed."""
        return self.in_period(at) and not self.revoked_by(at) and not self.destroyed

    def verifies(self, signed_at: datetime, now: datetime) -> bool:
        """Whether a signature made at ``signed_at`` and checked at ``now`` may be accepted."""
        return (
            self.in_period(signed_at)
            and not self.revoked_by(now)
            and not self.revoked_by(signed_at)
        )


@dataclass(frozen=True, slots=True)
class PartyEntry:
    """A party as the directory lists it."""

    code: str
    name: str
    oin: str
    kind: str
    signing_keys: tuple[PublicKeyRecord, ...]
    encryption_keys: tuple[PublicKeyRecord, ...]
    #: the key generation of the party's current TLS certificate (see the module docstring)
    generation: int = FIRST_GENERATION

    def __post_init__(self) -> None:
        if isinstance(self.generation, bool) or not isinstance(self.generation, int):
            raise DirectoryError("a party's key generation must be a whole number")
        if self.generation < FIRST_GENERATION:
            raise DirectoryError("a party's key generation starts at 1")


@dataclass(frozen=True, slots=True)
class PartyDirectory:
    """Every party and its public keys, as signed by the federation operator."""

    issued_at: datetime
    parties: tuple[PartyEntry, ...]

    def __post_init__(self) -> None:
        codes = [p.code for p in self.parties]
        if len(set(codes)) != len(codes):
            raise DirectoryError("a party code appears twice in the directory")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.parties)

    def generations(self) -> dict[str, int]:
        """Each party's current key generation, by code (what the broker ACLs are compiled for)."""
        return {p.code: p.generation for p in self.parties}

    def party(self, code: str) -> PartyEntry:
        for entry in self.parties:
            if entry.code == code:
                return entry
        raise UnknownParty(code)

    def signing_key(self, code: str, at: datetime) -> PublicKeyRecord:
        """The newest signing key of ``code`` usable at ``at``."""
        return _newest_usable(self.party(code).signing_keys, at, code, "signing")

    def encryption_key(self, code: str, at: datetime) -> PublicKeyRecord:
        """The newest encryption key of ``code`` usable at ``at``."""
        return _newest_usable(self.party(code).encryption_keys, at, code, "encryption")

    def verification_key(
        self, code: str, key_id: bytes, signed_at: datetime, now: datetime
    ) -> PublicKeyRecord:
        """Signing key ``key_id`` of ``code`` if it may verify a signature made at ``signed_at``."""
        for record in self.party(code).signing_keys:
            if record.key_id == key_id and record.verifies(signed_at, now):
                return record
        raise NoValidKey(code, "signing")


def _newest_usable(
    records: Sequence[PublicKeyRecord], at: datetime, code: str, purpose: str
) -> PublicKeyRecord:
    usable = [r for r in records if r.usable_at(at)]
    if not usable:
        raise NoValidKey(code, purpose)
    return max(usable, key=lambda r: r.not_before)


# --- the signed JSON document -----------------------------------------------------------------


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise DirectoryError("a time in the directory is not a string")
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError as error:
        raise DirectoryError("a time in the directory is malformed") from error
    return parsed.replace(tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise DirectoryError("a key in the directory is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as error:
        raise DirectoryError("a key in the directory is not base64") from error


def _key_document(record: PublicKeyRecord) -> dict[str, Any]:
    document = {
        "key_id": record.key_id.hex(),
        "public_key": _b64(record.public_key),
        "not_before": _time(record.not_before),
        "not_after": _time(record.not_after),
        "revoked_at": None if record.revoked_at is None else _time(record.revoked_at),
    }
    # written only once set, so directories without destruction dates read as before
    if record.destroy_after is not None:
        document["destroy_after"] = _time(record.destroy_after)
    if record.destroyed_at is not None:
        document["destroyed_at"] = _time(record.destroyed_at)
    return document


def _directory_body(directory: PartyDirectory) -> dict[str, Any]:
    return {
        "format": DIRECTORY_FORMAT,
        "issued_at": _time(directory.issued_at),
        "parties": [
            {
                "code": p.code,
                "name": p.name,
                "oin": p.oin,
                "kind": p.kind,
                "generation": p.generation,
                "signing_keys": [_key_document(k) for k in p.signing_keys],
                "encryption_keys": [_key_document(k) for k in p.encryption_keys],
            }
            for p in directory.parties
        ],
    }


def _canonical(body: Mapping[str, Any]) -> bytes:
    return canonical_json(body)


def sign_directory(directory: PartyDirectory, operator_key: primitives.Ed25519PrivateKey) -> bytes:
    """The directory as signed JSON: the body plus an Ed25519 signature over its canonical form."""
    body = _directory_body(directory)
    signature = primitives.sign(operator_key, _SIGNATURE_CONTEXT + _canonical(body))
    document = dict(body)
    document["signature"] = _b64(signature)
    return json.dumps(document, sort_keys=True, indent=2).encode() + b"\n"


def parse_directory(document: bytes, operator_public_key: bytes) -> PartyDirectory:
    """Check the operator's signature, then build the directory; raises DirectoryError."""
    try:
        parsed = json.loads(document)
    except (ValueError, UnicodeDecodeError) as error:
        raise DirectoryError("the party directory is not JSON") from error
    if not isinstance(parsed, dict) or parsed.get("format") != DIRECTORY_FORMAT:
        raise DirectoryError("the party directory has an unknown format")
    signature = _unb64(parsed.pop("signature", None))
    try:
        operator = primitives.verifying_key(operator_public_key)
        primitives.verify_signature(operator, signature, _SIGNATURE_CONTEXT + _canonical(parsed))
    except primitives.CryptoFailure as error:
        raise DirectoryError("the party directory's operator signature does not verify") from error
    try:
        return PartyDirectory(
            issued_at=_parse_time(parsed["issued_at"]),
            parties=tuple(_party(p) for p in parsed["parties"]),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise DirectoryError("the party directory misses a required entry") from error


def _party(entry: Mapping[str, Any]) -> PartyEntry:
    return PartyEntry(
        code=str(entry["code"]),
        name=str(entry["name"]),
        oin=str(entry["oin"]),
        kind=str(entry["kind"]),
        signing_keys=tuple(_key(k) for k in entry["signing_keys"]),
        encryption_keys=tuple(_key(k) for k in entry["encryption_keys"]),
        # directories signed before generations existed list none: their certificates are the first
        generation=entry.get("generation", FIRST_GENERATION),
    )


def _optional_time(entry: Mapping[str, Any], name: str) -> datetime | None:
    value = entry.get(name)
    return None if value is None else _parse_time(value)


def _key(entry: Mapping[str, Any]) -> PublicKeyRecord:
    revoked = entry["revoked_at"]
    try:
        key_id = bytes.fromhex(str(entry["key_id"]))
    except ValueError as error:
        raise DirectoryError("a key id in the directory is not hex") from error
    return PublicKeyRecord(
        key_id=key_id,
        public_key=_unb64(entry["public_key"]),
        not_before=_parse_time(entry["not_before"]),
        not_after=_parse_time(entry["not_after"]),
        revoked_at=None if revoked is None else _parse_time(revoked),
        destroy_after=_optional_time(entry, "destroy_after"),
        destroyed_at=_optional_time(entry, "destroyed_at"),
    )
