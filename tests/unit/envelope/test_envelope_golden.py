"""The committed golden vectors of envelope version 1 must open in every later version too."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sigex.clock import FixedClock
from sigex.envelope import EnvelopeError, Opener
from sigex.identity import PartyIdentity
from sigex.identity import _primitives as primitives
from sigex.identity.testing import directory_for

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "envelope_v1.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _identity(code: str, keys: dict[str, str]) -> PartyIdentity:
    return PartyIdentity(
        code=code,
        oin="00000099000000000000",
        signing_key=primitives.signing_key_from_seed(
            bytes.fromhex(keys["signing_private_key_TEST_ONLY"])
        ),
        encryption_key=primitives.encryption_key_from_seed(
            bytes.fromhex(keys["encryption_private_key_TEST_ONLY"])
        ),
        retired_encryption_keys=(),
        tls_key=None,
        tls_certificate=None,
        client_pem=None,
        ca_certificate=None,
    )


def _opener(vectors: dict[str, Any], code: str) -> Opener:
    identities = [_identity(c, k) for c, k in vectors["parties"].items()]
    for identity, (_, keys) in zip(identities, vectors["parties"].items(), strict=True):
        assert (
            primitives.raw_public_signing(identity.signing_key).hex() == keys["signing_public_key"]
        )
    directory = directory_for(
        identities,
        datetime.fromisoformat(vectors["key_validity"]["not_before"]),
        datetime.fromisoformat(vectors["key_validity"]["not_after"]),
    )
    return Opener(
        identity=next(i for i in identities if i.code == code),
        directory=directory,
        clock=FixedClock(datetime.fromisoformat(vectors["open_at"])),
        gateway=vectors["gateway"],
    )


def test_version_1_submissions_open(vectors: dict[str, Any]) -> None:
    gateway = _opener(vectors, vectors["gateway"])
    assert len(vectors["submissions"]) == 3
    for vector in vectors["submissions"]:
        message = gateway.open_submission(bytes.fromhex(vector["envelope"]), topic=vector["topic"])
        expected = vector["expected"]
        assert str(message.message_id) == expected["message_id"]
        assert message.timestamp_ms == expected["timestamp_ms"]
        assert {k: v.hex() for k, v in message.disclosed.items()} == expected["fields"]
        assert message.context.topic == expected["context"]["topic"]
        assert message.context.agreement == expected["context"]["agreement"]
        assert message.proof.tree_size == expected["tree_size"]
        # commitments follow the specification's formula, computed here independently
        for name, salt, value, digest in zip(
            message.names, message.salts, message.field_values, message.commitments, strict=True
        ):
            assert salt is not None and value is not None
            raw = name.encode()
            preimage = (
                b"sigex/v1/field\x00"
                + bytes([1, len(raw)])
                + len(value).to_bytes(4, "big")
                + raw
                + salt
                + value
            )
            assert hashlib.sha256(preimage).digest() == digest
            assert expected["commitments"][name] == digest.hex()


def test_version_1_deliveries_open(vectors: dict[str, Any]) -> None:
    for vector in vectors["deliveries"]:
        recipient = _opener(vectors, vector["recipient"])
        message = recipient.open_delivery(bytes.fromhex(vector["envelope"]), topic=vector["topic"])
        expected = vector["expected"]
        assert str(message.message_id) == expected["message_id"]
        assert {k: v.hex() for k, v in message.disclosed.items()} == expected["disclosed"]
        assert list(message.withheld) == expected["withheld"]
        assert message.decision.hex() == expected["decision"]
        assert message.decided_at_ms == expected["decided_at_ms"]
        assert message.origin.recipient == vectors["gateway"]
        assert message.context.recipient == vector["recipient"]
        recipient.verify(message)


def test_version_1_vectors_do_not_open_for_anyone_else(vectors: dict[str, Any]) -> None:
    outsider = _opener(vectors, "NLA")
    envelope = bytes.fromhex(vectors["deliveries"][0]["envelope"])
    with pytest.raises(EnvelopeError):
        outsider.open_delivery(envelope, topic=vectors["deliveries"][0]["topic"])
