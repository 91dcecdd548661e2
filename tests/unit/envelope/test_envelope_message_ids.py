"""Idempotent submissions: a message id derived from the signal, and the size of a submission."""

from __future__ import annotations

import uuid

import pytest

from sigex.envelope import (
    EnvelopeError,
    OutgoingRecord,
    derived_message_id,
    submission_size,
)
from sigex.envelope.testing import IN_TOPIC, Federation, sample_fields, submission_context

SIGNAL_ID = uuid.UUID("0192f1a0-7c3e-7b2a-9d4e-5f6a7b8c9d0e")


def test_the_derived_id_is_a_uuid8_fixed_by_sender_signal_purpose_and_signal_id() -> None:
    first = derived_message_id("RVIG", "laa.frequent-mover", "LAA_SIGNAAL", SIGNAL_ID)
    again = derived_message_id("RVIG", "laa.frequent-mover", "LAA_SIGNAAL", SIGNAL_ID)
    assert first == again
    value = uuid.UUID(bytes=first)
    assert value.version == 8 and value.variant == uuid.RFC_4122
    # the value in docs/envelope.md, section 4.5
    assert value == uuid.UUID("8d4d41d1-6dfc-84dc-bc7f-6b9dd67c7066")
    others = {
        derived_message_id("UWV", "laa.frequent-mover", "LAA_SIGNAAL", SIGNAL_ID),
        derived_message_id("RVIG", "laa.investigation-outcome", "LAA_SIGNAAL", SIGNAL_ID),
        derived_message_id("RVIG", "laa.frequent-mover", "OTHER", SIGNAL_ID),
        derived_message_id("RVIG", "laa.frequent-mover", "LAA_SIGNAAL", uuid.uuid4()),
    }
    assert first not in others and len(others) == 4


def test_a_record_sealed_with_a_given_id_opens_with_that_id(federation: Federation) -> None:
    message_id = derived_message_id("RVIG", "laa.frequent-mover", "LAA_SIGNAAL", SIGNAL_ID)
    records = [
        OutgoingRecord.of(submission_context(), sample_fields(0), message_id),
        OutgoingRecord.of(submission_context(), sample_fields(1)),
    ]
    sealed = federation.sealer("RVIG").seal_messages(records)
    gateway = federation.opener("GATEWAY")
    opened = [gateway.open_submission(s.envelope, topic=IN_TOPIC) for s in sealed]
    assert opened[0].id_bytes == message_id == sealed[0].message_id.bytes
    assert opened[1].message_id == sealed[1].message_id
    assert opened[1].message_id.version == 7
    assert opened[0].disclosed == sample_fields(0)


def test_a_message_id_must_be_16_bytes() -> None:
    with pytest.raises(EnvelopeError):
        OutgoingRecord.of(submission_context(), sample_fields(0), b"short")


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 64, 200])
def test_submission_size_is_the_exact_sealed_length(federation: Federation, batch: int) -> None:
    records = [OutgoingRecord.of(submission_context(), sample_fields(i)) for i in range(batch)]
    sealed = federation.sealer("RVIG").seal(records)
    for record, envelope in zip(records, sealed, strict=True):
        assert len(envelope) <= submission_size(record.context, dict(record.fields), batch)
    first = records[0]
    assert len(sealed[0]) == submission_size(first.context, dict(first.fields), batch)
