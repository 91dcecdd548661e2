"""The party directory: rotation keeps old signatures valid, revocation ends them all."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from sigex.clock import FixedClock
from sigex.identity import (
    DirectoryError,
    NoValidKey,
    PartySpec,
    UnknownParty,
    init_federation,
    load_directory,
    load_party,
    parse_directory,
    rotate_party,
    sign_directory,
)
from sigex.identity import _primitives as primitives
from sigex.identity.testing import directory_for, fixed_identity

T0 = datetime(2027, 2, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPECS = (
    PartySpec("NLA", "Nederlandse Arbeidsinspectie", "00000099000000021000", "authority"),
    PartySpec("GATEWAY", "sigex policy gateway", "00000099000000090001", "service"),
)


def test_rotation_keeps_old_signatures_and_switches_new_ones(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    init_federation(tmp_path, SPECS, clock)
    old = load_party(tmp_path, "NLA")
    clock.advance(10 * HOUR)
    rotate_party(tmp_path, "NLA", clock)
    new = load_party(tmp_path, "NLA")
    directory = load_directory(tmp_path)
    assert new.signing_key_id != old.signing_key_id
    assert new.retired_encryption_keys  # old data stays readable
    later = clock.now() + HOUR
    # the old key verifies what it signed while valid ...
    directory.verification_key("NLA", old.signing_key_id, T0 + HOUR, later)
    # ... but nothing claimed to be signed after the rotation
    with pytest.raises(NoValidKey):
        directory.verification_key("NLA", old.signing_key_id, later, later)
    assert directory.signing_key("NLA", later).key_id == new.signing_key_id
    assert directory.encryption_key("NLA", later).key_id == new.encryption_key_id
    directory.verification_key("NLA", new.signing_key_id, later, later)


def test_revocation_ends_every_signature_of_the_key(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    init_federation(tmp_path, SPECS, clock)
    old = load_party(tmp_path, "NLA")
    clock.advance(10 * HOUR)
    revoked_at = clock.now()
    rotate_party(tmp_path, "NLA", clock, revoke=True)
    directory = load_directory(tmp_path)
    with pytest.raises(NoValidKey):
        directory.verification_key("NLA", old.signing_key_id, T0 + HOUR, revoked_at + HOUR)
    # asked about a moment before the revocation, it still verified then
    directory.verification_key("NLA", old.signing_key_id, T0 + HOUR, revoked_at - HOUR)


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_revocation_issues_a_certificate_of_the_next_key_generation(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    init_federation(tmp_path, SPECS, clock)
    folder = tmp_path / "federation" / "parties" / "NLA"
    old_certificate = _certificate(folder / "tls.pem")
    old_key = (folder / "tls.key").read_bytes()
    assert load_directory(tmp_path).party("NLA").generation == 1
    clock.advance(HOUR)
    entry = rotate_party(tmp_path, "NLA", clock, revoke=True)
    assert entry.generation == 2
    directory = load_directory(tmp_path)  # the generation is part of what the operator signs
    assert directory.party("NLA").generation == 2
    assert directory.generations() == {"NLA": 2, "GATEWAY": 1}
    new_certificate = _certificate(folder / "tls.pem")
    assert new_certificate.subject.rfc4514_string().startswith("CN=NLA,OU=key-generation-2,")
    assert new_certificate.serial_number != old_certificate.serial_number
    assert (folder / "tls.key").read_bytes() != old_key
    ca = _certificate(tmp_path / "federation" / "ca.pem")
    new_certificate.verify_directly_issued_by(ca)
    client = x509.load_pem_x509_certificates((folder / "client.pem").read_bytes())[0]
    assert client == new_certificate
    # a second revocation goes on counting
    clock.advance(HOUR)
    assert rotate_party(tmp_path, "NLA", clock, revoke=True).generation == 3


def test_a_planned_rotation_keeps_the_certificate_and_generation(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    init_federation(tmp_path, SPECS, clock)
    folder = tmp_path / "federation" / "parties" / "NLA"
    before = (folder / "tls.pem").read_bytes()
    clock.advance(HOUR)
    assert rotate_party(tmp_path, "NLA", clock).generation == 1
    assert (folder / "tls.pem").read_bytes() == before


def test_a_directory_signed_before_generations_lists_the_first(tmp_path: Path) -> None:
    operator = primitives.new_signing_key()
    document = json.loads(
        sign_directory(directory_for([fixed_identity("NLA", b"s")], T0, T0 + HOUR), operator)
    )
    for party in document["parties"]:
        del party["generation"]
    del document["signature"]
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    document["signature"] = base64.b64encode(
        primitives.sign(operator, b"sigex party directory v1\x00" + body)
    ).decode()
    parsed = parse_directory(json.dumps(document).encode(), primitives.raw_public_signing(operator))
    assert parsed.party("NLA").generation == 1


def test_a_malformed_generation_is_refused(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    init_federation(tmp_path, SPECS, clock)
    entry = load_directory(tmp_path).party("NLA")
    for bad in (0, -1, True, "2"):
        with pytest.raises(DirectoryError):
            replace(entry, generation=bad)


def test_lookups_fail_with_typed_errors() -> None:
    identity = fixed_identity("NLA", b"seed")
    directory = directory_for([identity], T0, T0 + 100 * HOUR)
    with pytest.raises(UnknownParty):
        directory.signing_key("XYZ", T0)
    with pytest.raises(NoValidKey):
        directory.signing_key("NLA", T0 - HOUR)
    with pytest.raises(NoValidKey):
        directory.encryption_key("NLA", T0 + 100 * HOUR)
    with pytest.raises(NoValidKey):
        directory.verification_key("NLA", b"\x00" * 8, T0, T0)


def test_signed_directory_round_trip() -> None:
    identity = fixed_identity("NLA", b"seed")
    directory = directory_for([identity], T0, T0 + HOUR)
    operator = primitives.signing_key_from_seed(bytes(32))
    document = sign_directory(directory, operator)
    parsed = parse_directory(document, primitives.raw_public_signing(operator))
    assert parsed == directory
