"""Checkpoints as C2SP signed notes, cosignatures, and the logs made before both."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit import note
from sigex.audit.checkpoint import (
    LEGACY_ORIGIN,
    Checkpoint,
    sign_checkpoint,
    sign_legacy_checkpoint,
)
from sigex.audit.checkpoint_topic import checkpoint_record, parse_checkpoint_record
from sigex.audit.cosignature import (
    Cosignature,
    cosign,
    cosignatures_in,
    verify_with_key,
    with_cosignatures,
)
from sigex.audit.errors import CheckpointError, NoteError
from sigex.audit.store import AccessLogStore
from sigex.clock import FixedClock
from sigex.identity.testing import fixed_identity

from .conftest import RecordFactory

ORIGIN = "sigex.test/access-log"
ROOT = hashlib.sha256(b"a root").digest()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def test_a_checkpoint_is_the_c2sp_note_with_the_log_key_named_by_its_origin(
    signing_key: Ed25519PrivateKey, clock: FixedClock
) -> None:
    checkpoint = sign_checkpoint(20852163, ROOT, signing_key, clock, ORIGIN)
    body = f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + _raw(signing_key)).digest()[:4]
    line = base64.b64encode(key_id + checkpoint.signature).decode()
    assert checkpoint.note_text() == f"{body}\n\u2014 {ORIGIN} {line}\n"
    signing_key.public_key().verify(checkpoint.signature, body.encode())
    assert checkpoint.verify(signing_key.public_key())
    assert not checkpoint.verify(Ed25519PrivateKey.generate().public_key())


def test_a_note_reads_back_to_the_same_checkpoint_and_a_changed_one_does_not_verify(
    signing_key: Ed25519PrivateKey, clock: FixedClock
) -> None:
    checkpoint = sign_checkpoint(7, ROOT, signing_key, clock, ORIGIN)
    text = checkpoint.note_text().encode()
    assert Checkpoint.from_note(text, clock.now()) == checkpoint
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint
    bigger = text.replace(b"\n7\n", b"\n8\n")
    assert not Checkpoint.from_note(bigger, clock.now()).verify(signing_key.public_key())
    values = checkpoint.to_dict()
    values["tree_size"] = 8  # the fields and the note must say the same
    with pytest.raises(CheckpointError, match="note does not say"):
        Checkpoint.from_dict(values)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t.replace(b"\n\n", b"\n"), "blank line"),
        (lambda t: t.replace(b"\n7\n", b"\n07\n"), "leading zeros"),
        (lambda t: t.replace(b"\n7\n", b"\n\xd9\xa7\n"), "leading zeros"),  # an Arabic-Indic 7
        (lambda t: t + b"\x00", "control"),
        (lambda t: t.replace(b"\n\xe2\x80\x94 ", b"\n- "), "em dash"),
        (lambda t: t[:-3] + b"!=\n", "base64"),
        (lambda t: t.replace(b"=\n\n", b"=\nextension\n\n"), "three lines"),
    ],
)
def test_a_malformed_note_is_refused_with_a_typed_error(
    signing_key: Ed25519PrivateKey, clock: FixedClock, damage: object, message: str
) -> None:
    text = sign_checkpoint(7, ROOT, signing_key, clock, ORIGIN).note_text().encode()
    assert callable(damage)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_note(damage(text), clock.now())


def test_an_origin_that_cannot_be_a_key_name_is_refused(
    signing_key: Ed25519PrivateKey, clock: FixedClock
) -> None:
    for origin in ("with space", "a+b", "", LEGACY_ORIGIN, "line\nbreak"):
        with pytest.raises(CheckpointError):
            sign_checkpoint(1, ROOT, signing_key, clock, origin)


def test_a_cosignature_is_the_c2sp_cosignature_v1_of_the_checkpoint(
    signing_key: Ed25519PrivateKey, clock: FixedClock
) -> None:
    checkpoint = sign_checkpoint(5, ROOT, signing_key, clock, ORIGIN)
    witness = fixed_identity("NLA", b"formats")
    cosignature = cosign(checkpoint, "NLA", witness.signing_key, clock.now())
    public = _raw(witness.signing_key)
    name = "sigex.nl/witness/NLA"
    assert cosignature.key_id == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    message = b"cosignature/v1\ntime %d\n" % cosignature.timestamp + checkpoint.body()
    witness.signing_key.public_key().verify(cosignature.signature, message)
    assert verify_with_key(cosignature, checkpoint, public)
    other = sign_checkpoint(6, ROOT, signing_key, clock, ORIGIN)
    assert not verify_with_key(cosignature, other, public)
    later = Cosignature("NLA", cosignature.key_id, cosignature.timestamp + 1, cosignature.signature)
    assert not verify_with_key(later, checkpoint, public), "the time is signed"

    text = with_cosignatures(checkpoint, [cosignature]).encode()
    assert cosignatures_in(text) == [cosignature]
    assert Checkpoint.from_note(text, clock.now()) == checkpoint
    assert Cosignature.from_dict(cosignature.to_dict()) == cosignature


def test_legacy_checkpoints_still_verify_and_travel_in_their_own_form(
    signing_key: Ed25519PrivateKey, clock: FixedClock
) -> None:
    legacy = sign_legacy_checkpoint(3, ROOT, signing_key, clock)
    assert not legacy.is_note and legacy.verify(signing_key.public_key())
    assert Checkpoint.from_bytes(legacy.to_bytes()) == legacy
    with pytest.raises(CheckpointError):
        legacy.signed_note()
    for checkpoint in (legacy, sign_checkpoint(3, ROOT, signing_key, clock, ORIGIN)):
        key, value, headers = checkpoint_record(checkpoint)
        assert key == checkpoint.origin.encode()
        assert parse_checkpoint_record(value, headers) == checkpoint
    _, value, _ = checkpoint_record(sign_checkpoint(3, ROOT, signing_key, clock, ORIGIN))
    with pytest.raises(CheckpointError, match="sigex-issued-at"):
        parse_checkpoint_record(value, [])


def test_a_log_made_before_c2sp_checkpoints_opens_migrated_and_keeps_its_old_ones(
    tmp_path: Path,
    make_record: RecordFactory,
    signing_key: Ed25519PrivateKey,
    clock: FixedClock,
) -> None:
    db = tmp_path / "old.sqlite"
    with AccessLogStore.open(str(db)) as store:
        store.append([make_record() for _ in range(4)])
        old = sign_legacy_checkpoint(4, store.root(), signing_key, clock)
    connection = sqlite3.connect(db)  # the table as an earlier version made it
    connection.executescript(
        "DROP TABLE checkpoints; DROP TABLE cosignatures;"
        "CREATE TABLE checkpoints (tree_size INTEGER NOT NULL, root BLOB NOT NULL, "
        "issued_at TEXT NOT NULL, key_id TEXT NOT NULL, signature BLOB NOT NULL, "
        "PRIMARY KEY (tree_size, issued_at));"
    )
    connection.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)",
        (4, old.root, old.to_dict()["issued_at"], old.key_id, old.signature),
    )
    connection.commit()
    connection.close()

    with AccessLogStore.open(str(db), create=False) as reading:  # read only: not migrated
        assert reading.checkpoints() == [old]
        assert reading.cosignatures(old) == []
    with AccessLogStore.open(str(db)) as store:
        assert store.checkpoints() == [old]
        store.append([make_record()])
        clock.advance(timedelta(days=1))
        new = store.checkpoint(signing_key, clock, ORIGIN)
        assert store.checkpoints() == [old, new]
        assert new.is_note and new.verify(signing_key.public_key())
        assert old.verify(signing_key.public_key())
        witness = fixed_identity("UWV", b"formats")
        cosignature = cosign(new, "UWV", witness.signing_key, clock.now())
        assert store.add_cosignature(new, cosignature)
        assert not store.add_cosignature(new, cosignature), "kept once"
        assert store.cosignatures(new) == [cosignature]
        assert store.checkpoint(signing_key, clock).origin == ORIGIN, "the log keeps its name"


def test_a_note_key_name_with_a_space_or_plus_is_refused() -> None:
    for name in ("a b", "a+b", "", "a\u00a0b"):
        with pytest.raises(NoteError):
            note.check_key_name(name)
