"""The access record's canonical bytes, its invariants and the keyed pseudonym."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigex.audit.errors import AccessLogError, PseudonymKeyMissing, RecordFormatError
from sigex.canonical import canonical_json
from sigex.errors import InvalidIdentifier
from sigex.exchange.access_record import AccessRecord, EventKind, Outcome
from sigex.exchange.pseudonyms import (
    SubjectPseudonymiser,
    load_pseudonym_key,
    pseudonym_key_path,
)
from sigex.identity import InsecureKeyFile
from sigex.merkle import leaf_hash
from sigex.reasons import ReasonCode

from .conftest import PEOPLE, RecordFactory

GOLDEN = (
    b'{"agreement_id":"AGR-LAA-GM0363","agreement_version":1,"disclosed_fields":["bsn",'
    b'"address"],"kind":"DELIVERED","legal_basis":null,"message_id":"m-1","occurred_at":"2027-02-01T09:30:00.000000Z",'
    b'"operation_id":"00f067aa0ba902b7","outcome":"PERMIT","policy_version":"2027.02.1",'
    b'"purpose":"LAA_SIGNAAL","reason_codes":[],"recipient":"GM0363","sender":"RVIG",'
    b'"signal":"laa.frequent-mover","subject":"' + b"ab" * 32 + b'","trace_id":'
    b'"4bf92f3577b34da6a3ce929d0e0e4736","v":1}'
)


def golden_record() -> AccessRecord:
    return AccessRecord(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        operation_id="00f067aa0ba902b7",
        occurred_at=datetime(2027, 2, 1, 9, 30, tzinfo=UTC),
        kind=EventKind.DELIVERED,
        sender="RVIG",
        recipient="GM0363",
        signal="laa.frequent-mover",
        purpose="LAA_SIGNAAL",
        legal_basis=None,
        agreement_id="AGR-LAA-GM0363",
        agreement_version=1,
        policy_version="2027.02.1",
        outcome=Outcome.PERMIT,
        reason_codes=(),
        disclosed_fields=("bsn", "address"),
        message_id="m-1",
        subject="ab" * 32,
    )


def test_the_canonical_bytes_are_fixed() -> None:
    record = golden_record()
    expected = GOLDEN
    assert record.to_bytes() == expected
    assert AccessRecord.from_bytes(expected) == record
    assert leaf_hash(expected) == hashlib.sha256(b"\x00" + expected).digest()


def test_non_canonical_bytes_are_refused() -> None:
    data = golden_record().to_bytes()
    values = json.loads(data)
    with pytest.raises(RecordFormatError, match="canonical"):
        AccessRecord.from_bytes(json.dumps(values, indent=1).encode())
    values["extra"] = 1
    with pytest.raises(RecordFormatError, match="unknown"):
        AccessRecord.from_bytes(json.dumps(values, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(RecordFormatError):
        AccessRecord.from_bytes(data.replace(b".000000Z", b"+00:00"))
    with pytest.raises(RecordFormatError):
        AccessRecord.from_bytes(b"\xff")


@given(
    minute=st.integers(0, 10**6),
    fields=st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), max_size=4),
    kind=st.sampled_from([k for k in EventKind if k.name.startswith(("DELIVERED", "RECEIVED"))]),
)
def test_round_trip(minute: int, fields: list[str], kind: EventKind) -> None:
    record = replace(
        golden_record(),
        occurred_at=datetime.fromtimestamp(1.8e9 + minute * 60.5, UTC),
        disclosed_fields=tuple(fields),
        kind=kind,
    )
    assert AccessRecord.from_bytes(record.to_bytes()) == record


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": PEOPLE[0]}, "subject"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"disclosed_fields": ("street address",)}, "disclosed_fields"),
        ({"outcome": Outcome.DENY}, "outcome"),
        ({"kind": EventKind.REFUSED_FOR_RECIPIENT}, "outcome"),
        ({"recipient": None}, "recipient"),
        ({"agreement_version": None}, "agreement"),
        ({"occurred_at": datetime(2027, 1, 1)}, "occurred_at"),
    ],
)
def test_invariants(change: dict[str, object], field: str) -> None:
    with pytest.raises(RecordFormatError, match=field) as raised:
        replace(golden_record(), **change)  # type: ignore[arg-type]
    assert PEOPLE[0] not in str(raised.value)


_codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,20}", fullmatch=True)
_parties = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True)


@given(
    kind=st.sampled_from(EventKind),
    sender=_parties,
    recipient=st.none() | _parties,
    codes=st.tuples(_codes, _codes, _codes, _codes),
    basis=st.none() | st.tuples(_codes, _codes, st.integers(0, 2**53 - 1)),
    reasons=st.lists(st.sampled_from(ReasonCode) | _codes, max_size=3),
    fields=st.lists(_names, max_size=4),
    moment=st.integers(0, 4 * 10**15),
)
def test_the_template_writes_the_canonical_json_of_the_record(
    kind: EventKind,
    sender: str,
    recipient: str | None,
    codes: tuple[str, str, str, str],
    basis: tuple[str, str, int] | None,
    reasons: list[str],
    fields: list[str],
    moment: int,
) -> None:
    outcome = Outcome.DENY if kind.name.startswith("REFUSED") else Outcome.PERMIT
    legal_basis, agreement_id, agreement_version = basis or (None, None, None)
    try:
        record = replace(
            golden_record(),
            kind=kind,
            outcome=outcome,
            sender=sender,
            recipient=recipient or ("GM0363" if kind is EventKind.DELIVERED else None),
            signal=codes[0],
            purpose=codes[1],
            policy_version=codes[2],
            message_id=codes[3],
            legal_basis=legal_basis,
            agreement_id=agreement_id,
            agreement_version=agreement_version,
            reason_codes=tuple(reasons),
            disclosed_fields=tuple(fields) if outcome is Outcome.PERMIT else (),
            occurred_at=datetime.fromtimestamp(moment / 10**6, UTC),
        )
    except RecordFormatError:
        return
    assert record.to_bytes() == canonical_json(record.to_dict())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agreement_version": True}, "agreement_version"),  # True == 1, but not a version
        ({"reason_codes": ["ACCEPTED"]}, "reason_codes"),  # a list, not a tuple
        ({"sender": "uwv"}, "sender"),
        ({"legal_basis": "wet suwi"}, "legal_basis"),
    ],
)
def test_a_record_like_a_valid_one_is_checked_in_full(
    change: dict[str, object], field: str
) -> None:
    # valid records' few-valued fields are remembered as checked; a lookalike is not waved on
    valid = golden_record()
    replace(valid, trace_id="1" * 32)  # the same shared fields again: known valid
    with pytest.raises(RecordFormatError, match=field):
        replace(valid, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field", ["sender", "recipient", "signal", "purpose", "legal_basis", "message_id"]
)
def test_a_value_with_a_final_newline_is_refused(field: str) -> None:
    # "$" alone lets "GM0363\n" through; such a value would write a raw newline into the
    # template bytes (and split a packed Kafka record), so it must never make a record
    document = json.loads(golden_record().to_bytes())
    document[field] = f"{document[field]}\n"
    data = canonical_json(document)
    with pytest.raises(RecordFormatError, match=field):
        AccessRecord.from_bytes(data)
    with pytest.raises(RecordFormatError, match=field):
        replace(golden_record(), **{field: document[field]})


def test_a_refusal_discloses_nothing(make_record: RecordFactory) -> None:
    refused = make_record(kind=EventKind.REFUSED_AT_PUBLISH, recipient=None)
    assert refused.outcome is Outcome.DENY and refused.disclosed_fields == ()
    with pytest.raises(RecordFormatError, match="disclosed_fields"):
        replace(refused, disclosed_fields=("bsn",))


def test_the_pseudonym_is_keyed_and_stable() -> None:
    first = SubjectPseudonymiser(b"k" * 32)
    assert first.pseudonym(PEOPLE[0]) == first.pseudonym(PEOPLE[0])
    assert first.pseudonym(PEOPLE[0]) != first.pseudonym(PEOPLE[1])
    assert first.pseudonym(PEOPLE[0]) != SubjectPseudonymiser(b"l" * 32).pseudonym(PEOPLE[0])
    assert len(first.pseudonym(PEOPLE[0])) == 64
    assert "k" * 32 not in repr(first)
    with pytest.raises(InvalidIdentifier) as raised:
        first.pseudonym("123456789")
    assert "123456789" not in str(raised.value)
    with pytest.raises(AccessLogError):
        SubjectPseudonymiser(b"short")


def test_a_missing_pseudonym_key_is_an_error_never_a_new_key(tmp_path: Path) -> None:
    path = pseudonym_key_path(tmp_path)
    assert path == tmp_path / "federation" / "parties" / "AUDIT" / "pseudonym.key"
    with pytest.raises(PseudonymKeyMissing) as raised:
        load_pseudonym_key(tmp_path)
    message = str(raised.value)
    assert str(path) in message and "sigex keys init" in message and "backup" in message
    assert "\n" not in message
    assert not path.exists(), "the loader made a key"


def test_a_pseudonym_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = pseudonym_key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"k" * 32)
    os.chmod(path, 0o600)
    assert load_pseudonym_key(tmp_path) == b"k" * 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        load_pseudonym_key(tmp_path)
