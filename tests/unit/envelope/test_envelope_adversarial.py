"""Attacks on the envelope: each must end in the one opaque EnvelopeError, never a crash.

Where an attack needs the data key (a gateway that alters what it decrypted),
the test re-encrypts the altered plaintext with the real data key, so only the
signatures stand between the attacker and success.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sigex.envelope import EnvelopeError, Forwarding, Opener, OutgoingRecord, ReplayGuard, project
from sigex.envelope import _wire as wire
from sigex.envelope.testing import (
    END,
    IN_TOPIC,
    NOW,
    OUT_TOPIC,
    START,
    Federation,
    delivery_context,
    make_federation,
    sample_fields,
    submission_context,
)
from sigex.identity import PartyIdentity
from sigex.identity import _primitives as primitives
from sigex.identity.testing import directory_for, fixed_identity

# --- helpers ----------------------------------------------------------------------------------


def _layout(envelope: bytes) -> dict[str, slice]:
    lengths = struct.unpack_from(">7H", envelope, 5)
    context_end = 19 + sum(lengths)
    (sealer_length,) = struct.unpack_from(">H", envelope, context_end)
    period = context_end + 2 + sealer_length
    key_id = period + 12
    wrapped = key_id + 8
    nonce = wrapped + 80
    header_end = nonce + 12
    return {
        "context": slice(5, context_end),
        "sealer": slice(context_end, period),
        "period": slice(period, key_id),
        "key_id": slice(key_id, wrapped),
        "wrapped": slice(wrapped, nonce),
        "nonce": slice(nonce, header_end),
        "header": slice(0, header_end),
        "ciphertext": slice(header_end + 4, len(envelope)),
    }


def _cipher(envelope: bytes, recipient: PartyIdentity) -> primitives.AESGCM:
    parts = _layout(envelope)
    info = wire.wrap_info(
        envelope[parts["sealer"]],
        wire.text(recipient.code),
        envelope[parts["period"]],
        envelope[parts["key_id"]],
    )
    secret = primitives.hpke_unwrap(recipient.encryption_key, envelope[parts["wrapped"]], info)
    return primitives.aead(secret)


def decrypt(envelope: bytes, recipient: PartyIdentity) -> bytes:
    parts = _layout(envelope)
    return _cipher(envelope, recipient).decrypt(
        envelope[parts["nonce"]], envelope[parts["ciphertext"]], envelope[parts["header"]]
    )


def reencrypt(envelope: bytes, recipient: PartyIdentity, plaintext: bytes) -> bytes:
    parts = _layout(envelope)
    header = envelope[parts["header"]]
    body = _cipher(envelope, recipient).encrypt(envelope[parts["nonce"]], plaintext, header)
    return header + struct.pack(">I", len(body)) + body


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


def rejects(action: Callable[[], object]) -> None:
    with pytest.raises(EnvelopeError) as caught:
        action()
    assert str(caught.value) == "envelope rejected"
    assert type(caught.value) is EnvelopeError


# --- without keys: bit flips anywhere ---------------------------------------------------------


def test_a_flipped_bit_anywhere_in_an_envelope_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(3)[1]
    gateway = federation.opener("GATEWAY")
    assert gateway.open_submission(envelope, topic=IN_TOPIC)
    for index in range(len(envelope)):
        rejects(lambda i=index: gateway.open_submission(flip(envelope, i), topic=IN_TOPIC))


@pytest.mark.parametrize("part", ["context", "sealer", "period", "key_id", "wrapped", "nonce"])
def test_a_flipped_bit_in_each_header_part_is_rejected(federation: Federation, part: str) -> None:
    envelope = federation.submissions(1)[0]
    gateway = federation.opener("GATEWAY")
    region = _layout(envelope)[part]
    for index in (region.start, region.stop - 1):
        rejects(lambda i=index: gateway.open_submission(flip(envelope, i, 3), topic=IN_TOPIC))


def test_a_flipped_bit_in_the_ciphertext_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    region = _layout(envelope)["ciphertext"]
    gateway = federation.opener("GATEWAY")
    for index in range(region.start, region.stop, 7):
        rejects(lambda i=index: gateway.open_submission(flip(envelope, i, 5), topic=IN_TOPIC))


# --- with the data key: only the sender's signature protects the content -----------------------


def test_every_changed_plaintext_byte_breaks_the_senders_signature(federation: Federation) -> None:
    envelope = federation.submissions(3)[2]
    gateway_identity = federation.identities["GATEWAY"]
    plaintext = decrypt(envelope, gateway_identity)
    gateway = federation.opener("GATEWAY")
    assert gateway.open_submission(reencrypt(envelope, gateway_identity, plaintext), topic=IN_TOPIC)
    for index in range(len(plaintext)):
        forged = reencrypt(envelope, gateway_identity, flip(plaintext, index))
        rejects(lambda f=forged: gateway.open_submission(f, topic=IN_TOPIC))


def _region_attack(federation: Federation, locate: Callable[[bytes], int]) -> None:
    envelope = federation.submissions(3)[0]
    gateway_identity = federation.identities["GATEWAY"]
    plaintext = decrypt(envelope, gateway_identity)
    forged = reencrypt(envelope, gateway_identity, flip(plaintext, locate(plaintext)))
    rejects(lambda: federation.opener("GATEWAY").open_submission(forged, topic=IN_TOPIC))


def test_a_flipped_field_value_is_rejected(federation: Federation) -> None:
    _region_attack(federation, lambda p: p.index(b"Damrak 1"))


def test_a_flipped_salt_is_rejected(federation: Federation) -> None:
    # the salt sits between the field name and its value
    _region_attack(federation, lambda p: p.index(b"Damrak 1") - 1)


def test_a_flipped_merkle_path_is_rejected(federation: Federation) -> None:
    # batch of 3, leaf 0: two path hashes, just before the 64-byte signature
    _region_attack(federation, lambda p: len(p) - 64 - 40)


def test_a_flipped_signature_is_rejected(federation: Federation) -> None:
    _region_attack(federation, lambda p: len(p) - 10)


def test_a_flipped_signature_is_rejected_even_when_the_root_is_cached(
    federation: Federation,
) -> None:
    envelopes = federation.submissions(3)
    gateway = federation.opener("GATEWAY")
    gateway.open_submission(envelopes[0], topic=IN_TOPIC)  # root now verified and cached
    identity = federation.identities["GATEWAY"]
    plaintext = decrypt(envelopes[1], identity)
    forged = reencrypt(envelopes[1], identity, flip(plaintext, len(plaintext) - 1))
    rejects(lambda: gateway.open_submission(forged, topic=IN_TOPIC))


# --- a gateway that alters what it forwards -----------------------------------------------------


def _opened(federation: Federation):  # type: ignore[no-untyped-def]
    return federation.opener("GATEWAY").open_submission(
        federation.submissions(3)[1], topic=IN_TOPIC
    )


def _forward_and_open(federation: Federation, message) -> None:  # type: ignore[no-untyped-def]
    envelope = federation.sealer("GATEWAY").forward(
        [Forwarding(message, delivery_context(), b"decision")]
    )[0]
    federation.opener("GM0363").open_delivery(envelope, topic=OUT_TOPIC)


def test_the_gateway_cannot_change_a_field_value(federation: Federation) -> None:
    message = _opened(federation)
    values = list(message.field_values)
    values[0] = b"Damrak 99, Amsterdam"
    rejects(lambda: _forward_and_open(federation, replace(message, field_values=tuple(values))))
    rejects(
        lambda: federation.opener("GATEWAY").verify(replace(message, field_values=tuple(values)))
    )


def test_the_gateway_cannot_change_a_salt(federation: Federation) -> None:
    message = _opened(federation)
    salts = list(message.salts)
    salts[1] = flip(salts[1] or b"", 0)
    rejects(lambda: _forward_and_open(federation, replace(message, salts=tuple(salts))))


def test_the_gateway_cannot_change_a_withheld_commitment(federation: Federation) -> None:
    message = project(_opened(federation), {"address"})
    commitments = list(message.commitments)
    commitments[1] = flip(commitments[1], 4)
    rejects(lambda: _forward_and_open(federation, replace(message, commitments=tuple(commitments))))


def test_the_gateway_cannot_change_the_merkle_path_or_signature(federation: Federation) -> None:
    message = _opened(federation)
    path = list(message.proof.path)
    path[0] = flip(path[0], 0)
    bad_path = replace(message, proof=replace(message.proof, path=tuple(path)))
    rejects(lambda: _forward_and_open(federation, bad_path))
    bad_signature = replace(
        message, proof=replace(message.proof, signature=flip(message.proof.signature, 2))
    )
    rejects(lambda: _forward_and_open(federation, bad_signature))
    bad_index = replace(message, proof=replace(message.proof, leaf_index=0))
    rejects(lambda: _forward_and_open(federation, bad_index))


def test_the_gateway_cannot_invent_a_field_or_drop_one_silently(federation: Federation) -> None:
    message = _opened(federation)
    invented = replace(
        message,
        names=(*message.names, "zzz"),
        commitments=(*message.commitments, bytes(32)),
        salts=(*message.salts, bytes(16)),
        field_values=(*message.field_values, b"invented"),
    )
    rejects(lambda: _forward_and_open(federation, invented))
    dropped = replace(
        message,
        names=message.names[1:],
        commitments=message.commitments[1:],
        salts=message.salts[1:],
        field_values=message.field_values[1:],
    )
    rejects(lambda: _forward_and_open(federation, dropped))


def test_the_gateway_cannot_redirect_the_origin(federation: Federation) -> None:
    message = _opened(federation)
    other_purpose = replace(message, context=replace(message.context, purpose="SUWI64_ARB"))
    rejects(lambda: _forward_and_open(federation, other_purpose))


def test_only_the_gateway_may_seal_deliveries(federation: Federation) -> None:
    message = _opened(federation)
    envelope = federation.sealer("NLA").forward([Forwarding(message, delivery_context(), b"d")])[0]
    rejects(lambda: federation.opener("GM0363").open_delivery(envelope, topic=OUT_TOPIC))


def test_a_delivery_is_bound_to_its_topic_and_recipient(federation: Federation) -> None:
    message = _opened(federation)
    envelope = federation.sealer("GATEWAY").forward(
        [Forwarding(message, delivery_context(), b"d")]
    )[0]
    rejects(lambda: federation.opener("GM0363").open_delivery(envelope, topic="elsewhere"))
    rejects(lambda: federation.opener("NLA").open_delivery(envelope, topic=OUT_TOPIC))
    rejects(lambda: federation.opener("GM0363").open_submission(envelope, topic=OUT_TOPIC))


# --- keys -------------------------------------------------------------------------------------


def test_the_wrong_recipient_key_opens_nothing(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    rejects(lambda: federation.opener("NLA").open_submission(envelope, topic=IN_TOPIC))
    impostor = Opener(
        identity=fixed_identity("GATEWAY", b"another seed"),
        directory=federation.directory,
        clock=federation.clock,
    )
    rejects(lambda: impostor.open_submission(envelope, topic=IN_TOPIC))


def test_a_retired_encryption_key_still_opens_old_data(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    old = federation.identities["GATEWAY"]
    rotated = replace(
        fixed_identity("GATEWAY", b"new seed"), retired_encryption_keys=(old.encryption_key,)
    )
    opener = Opener(identity=rotated, directory=federation.directory, clock=federation.clock)
    assert opener.open_submission(envelope, topic=IN_TOPIC).disclosed == sample_fields(0)


def _with_directory(federation: Federation, directory) -> Opener:  # type: ignore[no-untyped-def]
    return Opener(
        identity=federation.identities["GATEWAY"], directory=directory, clock=federation.clock
    )


def test_a_revoked_sender_key_verifies_nothing_after_revocation(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    identities = list(federation.identities.values())
    revoked_later = directory_for(
        identities,
        START,
        END,
        revoked_at=NOW + timedelta(hours=1),
        revoked_codes=frozenset({"RVIG"}),
    )
    opener = _with_directory(federation, revoked_later)
    assert opener.open_submission(envelope, topic=IN_TOPIC)  # before the revocation time
    federation.clock.advance(timedelta(hours=2))
    rejects(lambda: opener.open_submission(envelope, topic=IN_TOPIC))  # cached root or not
    revoked_before = directory_for(
        identities,
        START,
        END,
        revoked_at=NOW - timedelta(hours=1),
        revoked_codes=frozenset({"RVIG"}),
    )
    rejects(
        lambda: _with_directory(federation, revoked_before).open_submission(
            envelope, topic=IN_TOPIC
        )
    )


def test_an_expired_sender_key_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    expired = directory_for(list(federation.identities.values()), START, NOW - timedelta(days=1))
    rejects(lambda: _with_directory(federation, expired).open_submission(envelope, topic=IN_TOPIC))
    not_yet = directory_for(list(federation.identities.values()), NOW + timedelta(days=1), END)
    rejects(lambda: _with_directory(federation, not_yet).open_submission(envelope, topic=IN_TOPIC))


def test_a_sealer_with_a_revoked_or_expired_key_refuses_to_seal(federation: Federation) -> None:
    record = OutgoingRecord.of(submission_context(), sample_fields())
    federation.directory = directory_for(
        list(federation.identities.values()),
        START,
        END,
        revoked_at=NOW - timedelta(seconds=1),
        revoked_codes=frozenset({"RVIG"}),
    )
    with pytest.raises(EnvelopeError):
        federation.sealer("RVIG").seal([record])
    federation.directory = directory_for(list(federation.identities.values()), START, NOW)
    with pytest.raises(EnvelopeError):
        federation.sealer("RVIG").seal([record])


def test_an_unknown_signer_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    without_rvig = directory_for(
        [i for c, i in federation.identities.items() if c != "RVIG"], START, END
    )
    rejects(
        lambda: _with_directory(federation, without_rvig).open_submission(envelope, topic=IN_TOPIC)
    )


# --- replay -----------------------------------------------------------------------------------


def test_a_replayed_message_is_refused(federation: Federation) -> None:
    guard = ReplayGuard(clock=federation.clock)
    gateway = federation.opener("GATEWAY")
    envelope = federation.submissions(1)[0]
    first = gateway.open_submission(envelope, topic=IN_TOPIC)
    guard.admit(first.message_id, first.timestamp)
    again = gateway.open_submission(envelope, topic=IN_TOPIC)
    with pytest.raises(EnvelopeError):
        guard.admit(again.message_id, again.timestamp)


def test_the_replay_guard_window_skew_and_capacity(federation: Federation) -> None:
    clock = federation.clock
    guard = ReplayGuard(
        clock=clock, window=timedelta(minutes=10), max_skew=timedelta(minutes=1), capacity=2
    )
    now = clock.now()
    with pytest.raises(EnvelopeError):
        guard.admit(b"a" * 16, now + timedelta(minutes=2))  # from the future
    with pytest.raises(EnvelopeError):
        guard.admit(b"b" * 16, now - timedelta(minutes=11))  # older than the window
    guard.admit(b"1" * 16, now - timedelta(seconds=3))
    guard.admit(b"2" * 16, now - timedelta(seconds=2))
    guard.admit(b"3" * 16, now - timedelta(seconds=1))  # forgets id 1
    assert len(guard) == 2
    with pytest.raises(EnvelopeError):
        guard.admit(b"1" * 16, now - timedelta(seconds=3))  # forgotten, yet still refused
    with pytest.raises(EnvelopeError):
        guard.admit(b"3" * 16, now - timedelta(seconds=1))
    clock.advance(timedelta(minutes=20))
    guard.admit(b"4" * 16, clock.now())
    assert len(guard) == 1


# --- malformed input --------------------------------------------------------------------------


def test_every_truncation_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(2)[0]
    gateway = federation.opener("GATEWAY")
    for length in range(len(envelope)):
        rejects(lambda n=length: gateway.open_submission(envelope[:n], topic=IN_TOPIC))


def test_oversized_and_padded_input_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    small = Opener(
        identity=federation.identities["GATEWAY"],
        directory=federation.directory,
        clock=federation.clock,
        max_envelope_bytes=len(envelope) - 1,
    )
    rejects(lambda: small.open_submission(envelope, topic=IN_TOPIC))
    gateway = federation.opener("GATEWAY")
    rejects(lambda: gateway.open_submission(envelope + b"\x00", topic=IN_TOPIC))
    rejects(lambda: gateway.open_submission(b"\x00" * (2 << 20), topic=IN_TOPIC))


def test_an_unknown_version_is_rejected(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    for version in (0, 2, 255):
        changed = envelope[:3] + bytes([version]) + envelope[4:]
        rejects(lambda c=changed: federation.opener("GATEWAY").open_submission(c, topic=IN_TOPIC))


def test_a_rejection_logs_a_reason_but_no_personal_data(federation: Federation) -> None:
    envelope = federation.submissions(1)[0]
    identity = federation.identities["GATEWAY"]
    plaintext = decrypt(envelope, identity)
    forged = reencrypt(envelope, identity, plaintext.replace(b"Damrak 1", b"Damrak 2"))
    with capture_logs() as logs:
        rejects(lambda: federation.opener("GATEWAY").open_submission(forged, topic=IN_TOPIC))
    assert len(logs) == 1
    assert logs[0]["event"] == "envelope_rejected"
    assert logs[0]["reason"] == "CryptoFailure"
    text = repr(logs)
    assert "123456782" not in text and "Damrak" not in text


_SHARED = make_federation()
_VALID = _SHARED.submissions(2)[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_input_is_rejected(data: bytes) -> None:
    rejects(lambda: _SHARED.opener("GATEWAY").open_submission(data, topic=IN_TOPIC))
    rejects(lambda: _SHARED.opener("GM0363").open_delivery(data, topic=OUT_TOPIC))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_random_mutations_of_a_valid_envelope_are_rejected(
    changes: list[tuple[int, int]],
) -> None:
    mutated = bytearray(_VALID)
    for index, value in changes:
        mutated[index] = value
    opener = _SHARED.opener("GATEWAY")
    if bytes(mutated) == _VALID:
        assert opener.open_submission(bytes(mutated), topic=IN_TOPIC)
    else:
        rejects(lambda: opener.open_submission(bytes(mutated), topic=IN_TOPIC))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=600))
def test_random_plaintext_under_a_valid_data_key_is_rejected(plaintext: bytes) -> None:
    forged = reencrypt(_VALID, _SHARED.identities["GATEWAY"], plaintext)
    rejects(lambda: _SHARED.opener("GATEWAY").open_submission(forged, topic=IN_TOPIC))


# --- deliveries -------------------------------------------------------------------------------


def _deliveries(federation: Federation) -> tuple[bytes, ...]:
    gateway = federation.opener("GATEWAY")
    messages = [gateway.open_submission(e, topic=IN_TOPIC) for e in federation.submissions(3)]
    return federation.sealer("GATEWAY").forward(
        [Forwarding(project(m, {"address"}), delivery_context(), b"decision") for m in messages]
    )


def test_a_flipped_bit_anywhere_in_a_delivery_is_rejected(federation: Federation) -> None:
    envelope = _deliveries(federation)[1]
    recipient = federation.opener("GM0363")
    assert recipient.open_delivery(envelope, topic=OUT_TOPIC)
    for index in range(len(envelope)):
        rejects(lambda i=index: recipient.open_delivery(flip(envelope, i), topic=OUT_TOPIC))


def test_every_changed_delivery_byte_breaks_a_signature(federation: Federation) -> None:
    # whoever holds the data key (the recipient itself) still cannot forge a delivery
    envelope = _deliveries(federation)[2]
    identity = federation.identities["GM0363"]
    plaintext = decrypt(envelope, identity)
    recipient = federation.opener("GM0363")
    assert recipient.open_delivery(reencrypt(envelope, identity, plaintext), topic=OUT_TOPIC)
    for index in range(len(plaintext)):
        forged = reencrypt(envelope, identity, flip(plaintext, index, 6))
        rejects(lambda f=forged: recipient.open_delivery(f, topic=OUT_TOPIC))
