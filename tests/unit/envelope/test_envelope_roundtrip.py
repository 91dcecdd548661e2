"""The four use cases end to end: seal, open, project and forward, open the delivery."""

from __future__ import annotations

import struct
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from sigex.envelope import (
    EnvelopeError,
    Forwarding,
    OutgoingRecord,
    SealContext,
    project,
    pseudonym,
)
from sigex.envelope.testing import (
    IN_TOPIC,
    OUT_TOPIC,
    Federation,
    delivery_context,
    sample_fields,
    submission_context,
)
from sigex.identity import _primitives as primitives


def test_gateway_opens_every_record_of_a_batch(federation: Federation) -> None:
    envelopes = federation.submissions(5)
    assert not any(b"123456782" in e or b"Damrak" in e for e in envelopes)  # only ciphertext
    gateway = federation.opener("GATEWAY")
    opened = [gateway.open_submission(e, topic=IN_TOPIC) for e in envelopes]
    for index, message in enumerate(opened):
        assert message.disclosed == sample_fields(index)
        assert message.context == submission_context()
        assert message.sender == "RVIG"
        assert message.timestamp == federation.clock.now().replace(microsecond=0)
        assert message.message_id.version == 7
        assert message.proof.tree_size == 5
        assert message.proof.leaf_index == index
        assert message.withheld == ()
    assert len({m.message_id for m in opened}) == 5
    # one signature for the whole batch
    assert len({m.proof.signature for m in opened}) == 1


def test_uuid7_carries_the_timestamp(federation: Federation) -> None:
    message = federation.opener("GATEWAY").open_submission(
        federation.submissions(1)[0], topic=IN_TOPIC
    )
    assert isinstance(message.message_id, uuid.UUID)
    assert message.message_id.int >> 80 == message.timestamp_ms


def test_projection_and_forwarding_reach_the_recipient(federation: Federation) -> None:
    gateway_opener = federation.opener("GATEWAY")
    messages = [
        gateway_opener.open_submission(e, topic=IN_TOPIC) for e in federation.submissions(3)
    ]
    projected = [project(m, {"address", "moves_last_year", "not_a_field"}) for m in messages]
    assert projected[0].withheld == ("bsn", "municipality")
    gateway_opener.verify(projected[0])  # the sender's signature still holds over fewer fields
    decision = b"agreement=AGR-LAA-0001;policy=7;purpose=LAA_SIGNAAL;recipient=GM0363"
    deliveries = federation.sealer("GATEWAY").forward(
        [Forwarding(p, delivery_context(), decision) for p in projected]
    )
    recipient = federation.opener("GM0363")
    for index, envelope in enumerate(deliveries):
        delivered = recipient.open_delivery(envelope, topic=OUT_TOPIC)
        expected = sample_fields(index)
        assert delivered.disclosed == {
            "address": expected["address"],
            "moves_last_year": expected["moves_last_year"],
        }
        assert delivered.withheld == ("bsn", "municipality")
        assert delivered.decision == decision
        assert delivered.sender == "RVIG"
        assert delivered.gateway == "GATEWAY"
        assert delivered.message_id == messages[index].message_id
        assert delivered.timestamp == messages[index].timestamp
        assert delivered.origin == submission_context()
        assert delivered.context == delivery_context()
        assert delivered.gateway_proof.tree_size == 3
        assert b"123456782" not in envelope
        recipient.verify(delivered)


def test_full_disclosure_and_empty_disclosure_both_verify(federation: Federation) -> None:
    message = federation.opener("GATEWAY").open_submission(
        federation.submissions(1)[0], topic=IN_TOPIC
    )
    gateway = federation.sealer("GATEWAY")
    recipient = federation.opener("GM0363")
    for keep in (set(sample_fields()), set()):
        envelope = gateway.forward([Forwarding(project(message, keep), delivery_context(), b"d")])[
            0
        ]
        delivered = recipient.open_delivery(envelope, topic=OUT_TOPIC)
        assert set(delivered.disclosed) == keep


def test_a_forwarding_cannot_change_sender_or_signal(federation: Federation) -> None:
    message = federation.opener("GATEWAY").open_submission(
        federation.submissions(1)[0], topic=IN_TOPIC
    )
    with pytest.raises(EnvelopeError):
        Forwarding(message, replace(delivery_context(), sender="NLA"), b"d")
    with pytest.raises(EnvelopeError):
        Forwarding(message, replace(delivery_context(), signal="other"), b"d")


def test_a_party_cannot_seal_in_another_partys_name(federation: Federation) -> None:
    record = OutgoingRecord.of(submission_context(), sample_fields())
    with pytest.raises(EnvelopeError):
        federation.sealer("NLA").seal([record])


def test_records_are_validated(federation: Federation) -> None:
    with pytest.raises(EnvelopeError):
        OutgoingRecord(submission_context(), (("b", b"1"), ("a", b"2")))
    with pytest.raises(EnvelopeError):
        OutgoingRecord(submission_context(), (("a", b"1"), ("a", b"2")))
    with pytest.raises(EnvelopeError):
        OutgoingRecord.of(submission_context(), {"": b"1"})
    with pytest.raises(EnvelopeError):
        replace(submission_context(), purpose="")
    with pytest.raises(EnvelopeError):
        federation.sealer("RVIG").seal([])


def test_fields_are_opaque_bytes_including_empty_and_binary(federation: Federation) -> None:
    fields = {"empty": b"", "binary": bytes(range(256)), "unicode naam é": "✓".encode()}
    envelope = federation.sealer("RVIG").seal([OutgoingRecord.of(submission_context(), fields)])
    opened = federation.opener("GATEWAY").open_submission(envelope[0], topic=IN_TOPIC)
    assert opened.disclosed == fields


def test_no_public_key_operation_per_message(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"sign": 0, "verify": 0, "wrap": 0, "unwrap": 0}

    def counting(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*arguments):  # type: ignore[no-untyped-def]
            counts[name] += 1
            return function(*arguments)

        return wrapper

    monkeypatch.setattr(primitives, "sign", counting("sign", primitives.sign))
    monkeypatch.setattr(
        primitives, "verify_signature", counting("verify", primitives.verify_signature)
    )
    monkeypatch.setattr(primitives, "hpke_wrap", counting("wrap", primitives.hpke_wrap))
    monkeypatch.setattr(primitives, "hpke_unwrap", counting("unwrap", primitives.hpke_unwrap))
    sealer = federation.sealer("RVIG")
    gateway = federation.opener("GATEWAY")
    for _ in range(3):
        batch = [OutgoingRecord.of(submission_context(), sample_fields(i)) for i in range(64)]
        for envelope in sealer.seal(batch):
            gateway.open_submission(envelope, topic=IN_TOPIC)
    # three batches of 64: three signatures, three verifications, one data key each way
    assert counts == {"sign": 3, "verify": 3, "wrap": 1, "unwrap": 1}


def test_a_new_key_period_makes_a_new_data_key(federation: Federation) -> None:
    sealer = federation.sealer("RVIG")
    record = OutgoingRecord.of(submission_context(), sample_fields())
    first = sealer.seal([record])[0]
    federation.clock.advance(timedelta(days=1))
    second = sealer.seal([record])[0]
    gateway = federation.opener("GATEWAY")
    assert gateway.open_submission(first, topic=IN_TOPIC).disclosed == sample_fields()
    assert gateway.open_submission(second, topic=IN_TOPIC).disclosed == sample_fields()
    # the period fields follow the context and the sealer's name (section 4.1 of the spec)
    context_end = 19 + sum(struct.unpack_from(">7H", first, 5))
    period_at = context_end + 2 + len("RVIG")
    first_period = struct.unpack_from(">IQ", first, period_at)
    second_period = struct.unpack_from(">IQ", second, period_at)
    assert first_period[0] == second_period[0] == 86400
    assert second_period[1] == first_period[1] + 1
    wrapped = slice(period_at + 12 + 8, period_at + 12 + 8 + 80)
    assert first[wrapped] != second[wrapped]


def test_pseudonym_is_keyed_and_stable() -> None:
    key = bytes(range(32))
    other = bytes(range(1, 33))
    assert pseudonym(key, "123456782") == pseudonym(key, "123456782")
    assert pseudonym(key, "123456782") != pseudonym(other, "123456782")
    assert pseudonym(key, "123456782") != pseudonym(key, "111222333")
    assert len(pseudonym(key, "123456782")) == 32
    assert b"123456782" not in pseudonym(key, "123456782")
    with pytest.raises(ValueError):
        pseudonym(b"short", "123456782")


def test_context_is_not_personal_data_holder() -> None:
    context = submission_context()
    assert isinstance(context, SealContext)
    with pytest.raises(AttributeError):
        context.__dict__  # noqa: B018 - slotted: no per-instance dict
