"""Refusals at publish travel sealed for the audit service and become one record per subject."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime, timedelta

import pytest

from sigex.audit.indexer import parse_batch
from sigex.clock import FixedClock
from sigex.envelope import EnvelopeError, Opener, Sealer
from sigex.exchange.access_record import EventKind, Outcome, format_time
from sigex.exchange.party_events import (
    SEALED_EVENT,
    SEALED_EVENT_HEADER,
    PartyEventReader,
    seal_party_events,
)
from sigex.exchange.pseudonyms import SubjectPseudonyms
from sigex.identity.testing import directory_for, fixed_identity
from tests.unit.schemas.conftest import BSN_A, BSN_B

NOW = datetime(2027, 2, 1, 10, tzinfo=UTC)
TOPIC = "sigex.receipts.UWV"
KEY = bytes(range(32))


def event(sender: str = "UWV") -> dict[str, object]:
    return {
        "v": 1,
        "trace_id": "ab" * 16,
        "operation_id": "cd" * 8,
        "occurred_at": format_time(NOW),
        "kind": EventKind.REFUSED_AT_PUBLISH.value,
        "sender": sender,
        "recipient": None,
        "signal": "payroll.bsn-mismatch",
        "purpose": "LA_BSN_FEEDBACK",
        "legal_basis": None,
        "agreement_id": None,
        "agreement_version": None,
        "policy_version": "2026.11.1",
        "outcome": Outcome.DENY.value,
        "reason_codes": ["BASIS_UNDER_REVIEW"],
        "disclosed_fields": [],
        "message_id": "refused-" + "ab" * 16,
    }


@pytest.fixture
def parties() -> tuple[Sealer, Sealer, PartyEventReader]:
    clock = FixedClock(NOW)
    uwv, nla, audit = (fixed_identity(code, b"party-events") for code in ("UWV", "NLA", "AUDIT"))
    directory = directory_for([uwv, nla, audit], NOW - timedelta(days=1), NOW + timedelta(days=1))
    reader = PartyEventReader(
        Opener(identity=audit, directory=directory, clock=clock), SubjectPseudonyms(KEY)
    )
    return (
        Sealer(identity=uwv, directory=directory, clock=clock),
        Sealer(identity=nla, directory=directory, clock=clock),
        reader,
    )


def seal(sealer: Sealer, sender: str, subjects: list[str]) -> bytes:
    return seal_party_events(
        sealer,
        topic=TOPIC,
        signal="payroll.bsn-mismatch",
        schema_fingerprint="ab" * 32,
        sender=sender,
        purpose="LA_BSN_FEEDBACK",
        events=[(event(sender), subjects)],
    )[0]


def test_a_sealed_refusal_becomes_one_record_per_subject_without_the_bsn(
    parties: tuple[Sealer, Sealer, PartyEventReader],
) -> None:
    uwv, _, reader = parties
    envelope = seal(uwv, "UWV", [BSN_A, BSN_B])
    assert BSN_A.encode() not in envelope and BSN_B.encode() not in envelope
    records = reader.records(envelope, topic=TOPIC, party="UWV")
    pseudonyms = SubjectPseudonyms(KEY)
    assert {r.subject for r in records} == {
        pseudonyms.pseudonym(BSN_A),
        pseudonyms.pseudonym(BSN_B),
    }
    assert all(
        r.kind is EventKind.REFUSED_AT_PUBLISH and r.outcome is Outcome.DENY for r in records
    )
    assert len({r.operation_id for r in records}) == 2
    assert reader.records(envelope, topic=TOPIC, party="UWV") == records, "replays are identical"


def test_a_party_cannot_write_refusals_in_another_partys_name(
    parties: tuple[Sealer, Sealer, PartyEventReader],
) -> None:
    _, nla, reader = parties
    forged = seal(nla, "NLA", [BSN_A])
    with pytest.raises(ValueError, match="another party"):
        reader.records(forged, topic=TOPIC, party="UWV")


def test_a_tampered_party_event_is_refused(
    parties: tuple[Sealer, Sealer, PartyEventReader],
) -> None:
    uwv, _, reader = parties
    envelope = bytearray(seal(uwv, "UWV", [BSN_A]))
    envelope[-5] ^= 0x40
    with pytest.raises(EnvelopeError):
        reader.records(bytes(envelope), topic=TOPIC, party="UWV")


# -- the indexer's side ----------------------------------------------------------------------

Partition = namedtuple("Partition", "topic partition")
Message = namedtuple("Message", "value headers offset")


def indexed(reader: PartyEventReader, envelope: bytes) -> tuple[int, int]:
    batch = {Partition(TOPIC, 0): [Message(envelope, [(SEALED_EVENT_HEADER, SEALED_EVENT)], 7)]}
    accepted, rejected = parse_batch(batch, party_events=reader)
    return len(accepted), rejected


def test_the_indexer_takes_a_sealed_refusal(
    parties: tuple[Sealer, Sealer, PartyEventReader],
) -> None:
    uwv, _, reader = parties
    assert indexed(reader, seal(uwv, "UWV", [BSN_A, BSN_B])) == (2, 0)


@pytest.mark.parametrize("kind", ["DELIVERED", "PUBLISHED", "ACKNOWLEDGED"])
def test_a_party_cannot_seal_what_only_the_gateway_or_a_recipient_says(
    parties: tuple[Sealer, Sealer, PartyEventReader], kind: str
) -> None:
    uwv, _, reader = parties
    forged = event("UWV") | {
        "kind": kind,
        "outcome": "PERMIT",
        "recipient": "NLA",
        "reason_codes": [],
        "legal_basis": "NL.SUWI.64",
    }
    envelope = seal_party_events(
        uwv,
        topic=TOPIC,
        signal="payroll.bsn-mismatch",
        schema_fingerprint="ab" * 32,
        sender="UWV",
        purpose="SUWI64_ARB",
        events=[(forged, [BSN_A])],
    )[0]
    assert indexed(reader, envelope) == (0, 1)


def test_a_malformed_sealed_event_is_rejected_not_fatal(
    parties: tuple[Sealer, Sealer, PartyEventReader],
) -> None:
    uwv, _, reader = parties
    envelope = seal_party_events(
        uwv,
        topic=TOPIC,
        signal="payroll.bsn-mismatch",
        schema_fingerprint="ab" * 32,
        sender="UWV",
        purpose="LA_BSN_FEEDBACK",
        events=[(event("UWV"), [12345])],  # type: ignore[list-item]
    )[0]
    assert indexed(reader, envelope) == (0, 1)
