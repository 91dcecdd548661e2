"""The party directory: rotation keeps old signatures valid, revocation ends them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sigex.clock import FixedClock
from sigex.identity import (
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
