"""The gateway's pure core, without Kafka: records in, deliveries, audit and dead letters out.

A real federation (keys made by ``init_federation``), the shipped policy and
catalogue, and envelopes sealed by a partner's own Sealer; only the broker is
absent, because the core never talks to it (an import-linter contract says so).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from sigex.broker.gateway_core import GatewayOutput, IncomingRecord, PolicyGateway
from sigex.clock import FixedClock
from sigex.envelope import OutgoingRecord, SealContext, Sealer
from sigex.exchange.access_record import EventKind, Outcome
from sigex.exchange.protocol import REASONS_HEADER, TRACEPARENT, TraceContext, header_value
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.exchange.topology import DEAD_LETTER_TOPIC, LEDGER_TOPIC, delivery_topic, ingress_topic
from sigex.identity import init_federation, load_directory, load_party, read_parties
from sigex.policies.compiler import load_policy
from sigex.reasons import ReasonCode
from sigex.roles import Role
from sigex.schemas.catalogue import load_catalogue
from sigex.schemas.codec import encode_fields
from tests.signal_records import frequent_mover
from tests.unit.schemas.conftest import example_records, make_bsn

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
SIGNAL, PURPOSE, SENDER = "laa.frequent-mover", "LAA_SIGNAAL", "RVIG"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("federation")
    init_federation(folder, read_parties(REPO / "policies" / "parties.yaml"), FixedClock(NOW))
    return folder


@pytest.fixture
def gateway(state: Path) -> PolicyGateway:
    return PolicyGateway(
        identity=load_party(state, Role.GATEWAY),
        directory=load_directory(state),
        policy=load_policy(),
        catalogue=load_catalogue(),
        pseudonymiser=SubjectPseudonyms(load_pseudonym_key(state)),
        clock=FixedClock(NOW),
    )


def mover(municipality: str, bsn: str) -> dict[str, object]:
    return frequent_mover(municipality, bsn, NOW)


class Ingress:
    """Seals records as a partner does and numbers them as a partition would."""

    def __init__(self, state: Path) -> None:
        self._state = state
        self._offset = 0

    def seal(
        self,
        record: Mapping[str, object],
        *,
        signer: str = SENDER,
        purpose: str = PURPOSE,
        message_id: bytes | None = None,
        topic_of: str | None = None,
        signal: str = SIGNAL,
        raw_fields: Mapping[str, bytes] | None = None,
    ) -> bytes:
        spec = load_catalogue().signal(signal)
        sealer = Sealer(
            identity=load_party(self._state, signer),
            directory=load_directory(self._state),
            clock=FixedClock(NOW),
        )
        context = SealContext(
            topic=ingress_topic(signal, topic_of or signer),
            signal=signal,
            schema_fingerprint=spec.fingerprint,
            sender=signer,
            recipient=Role.GATEWAY,
            purpose=purpose,
            agreement="ingress",
        )
        fields = encode_fields(spec, record) | dict(raw_fields or {})
        return sealer.seal([OutgoingRecord.of(context, fields, message_id)])[0]

    def record(self, value: bytes, *, topic: str | None = None) -> IncomingRecord:
        self._offset += 1
        return IncomingRecord(
            topic or ingress_topic(SIGNAL, SENDER),
            0,
            self._offset,
            b"partner-key",
            value,
            ((TRACEPARENT, TraceContext.new().header()),),
        )


@pytest.fixture
def ingress(state: Path) -> Ingress:
    return Ingress(state)


def reasons(output: GatewayOutput) -> list[str]:
    return [(header_value(m.headers, REASONS_HEADER) or b"").decode() for m in output.dead_letters]


def test_a_lawful_signal_is_delivered_to_its_one_recipient_and_audited(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    output = gateway.process([ingress.record(ingress.seal(mover("GM0363", make_bsn(1))))])
    assert [m.topic for m in output.deliveries] == [delivery_topic(SIGNAL, "GM0363")]
    assert output.dead_letters == []
    kinds = {record.kind for record in output.audit}
    assert kinds == {EventKind.PUBLISHED, EventKind.DELIVERED}
    assert {record.outcome for record in output.audit} == {Outcome.PERMIT}
    assert len(output.admitted) == 1
    assert {m.topic for m in output.all()} >= {LEDGER_TOPIC}


def test_a_copy_is_refused_as_replayed_in_the_same_and_a_later_batch(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    envelope = ingress.seal(mover("GM0363", make_bsn(2)))
    first = gateway.process([ingress.record(envelope), ingress.record(envelope)])
    assert len(first.deliveries) == 1 and reasons(first) == [ReasonCode.REPLAYED]
    later = gateway.process([ingress.record(envelope)])
    assert later.deliveries == [] and reasons(later) == [ReasonCode.REPLAYED]


def test_another_content_under_a_known_message_id_is_an_alarm(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    message_id = uuid.uuid4().bytes
    gateway.process(
        [ingress.record(ingress.seal(mover("GM0363", make_bsn(3)), message_id=message_id))]
    )
    reused = ingress.seal(mover("GM0363", make_bsn(4)), message_id=message_id)
    output = gateway.process([ingress.record(reused)])
    assert output.deliveries == [] and reasons(output) == [ReasonCode.MESSAGE_ID_REUSED]


def test_a_forged_sender_is_dead_lettered(gateway: PolicyGateway, ingress: Ingress) -> None:
    # UWV signs a message for RVIG's topic and it lands there: the signer is not the sender
    forged = ingress.seal(mover("GM0363", make_bsn(5)), signer="UWV", topic_of=SENDER)
    output = gateway.process([ingress.record(forged)])
    assert output.deliveries == [] and reasons(output) == [ReasonCode.SENDER_MISMATCH]


def test_garbage_is_dead_lettered_and_audited_never_fatal(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    output = gateway.process([ingress.record(b"\x00not an envelope")])
    assert output.deliveries == [] and reasons(output) == [ReasonCode.ENVELOPE_INVALID]
    assert [r.kind for r in output.audit] == [EventKind.DEAD_LETTERED]
    assert output.dead_letters[0].topic == DEAD_LETTER_TOPIC
    assert output.dead_letters[0].key is None  # the sender's key is not copied


def test_a_purpose_without_an_agreement_is_refused_with_the_policys_reasons(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    output = gateway.process(
        [ingress.record(ingress.seal(mover("GM0363", make_bsn(6)), purpose="SUWI64_FISC"))]
    )
    assert output.deliveries == []
    (codes,) = reasons(output)
    assert ReasonCode.NO_LAWFUL_RECIPIENT in codes.split(",")
    assert {r.outcome for r in output.audit} == {Outcome.DENY}


def test_a_withdrawn_output_may_come_again(gateway: PolicyGateway, ingress: Ingress) -> None:
    envelope = ingress.seal(mover("GM0363", make_bsn(7)))
    first = gateway.process([ingress.record(envelope)])
    gateway.withdraw(first)  # its transaction did not commit
    again = gateway.process([ingress.record(envelope)])
    assert len(again.deliveries) == 1 and again.dead_letters == []


def test_an_undeliverable_topic_refuses_that_recipient_only(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    records = [
        ingress.record(ingress.seal(mover("GM0363", make_bsn(8)))),
        ingress.record(ingress.seal(mover("GM0599", make_bsn(9)))),
    ]
    output = gateway.process(records, undeliverable=frozenset({delivery_topic(SIGNAL, "GM0363")}))
    assert [m.topic for m in output.deliveries] == [delivery_topic(SIGNAL, "GM0599")]
    assert reasons(output) == [ReasonCode.DELIVERY_FAILED]
    refused = [r for r in output.audit if r.kind is EventKind.REFUSED_FOR_RECIPIENT]
    assert [r.recipient for r in refused] == ["GM0363"]


def test_no_bsn_in_any_key_or_header_of_the_output(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    bsn = make_bsn(10)
    output = gateway.process(
        [
            ingress.record(ingress.seal(mover("GM0363", bsn))),
            ingress.record(ingress.seal(mover("GM0363", bsn), signer="UWV")),
        ]
    )
    for message in output.all():
        visible = (message.key or b"") + b"".join(name.encode() + v for name, v in message.headers)
        assert bsn.encode() not in visible


def test_a_delivery_the_broker_refused_is_refused_for_that_message_only(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    big = ingress.record(ingress.seal(mover("GM0363", make_bsn(11))))
    other = ingress.record(ingress.seal(mover("GM0363", make_bsn(12))))
    refused = frozenset({(big.topic, big.partition, big.offset, delivery_topic(SIGNAL, "GM0363"))})
    output = gateway.process([big, other], refused=refused)
    assert [m.delivery_of() for m in output.deliveries] == [
        (other.topic, other.partition, other.offset, delivery_topic(SIGNAL, "GM0363"))
    ]
    assert reasons(output) == [ReasonCode.DELIVERY_FAILED]


def test_each_recipient_refused_after_the_decision_has_its_own_dead_letter_record(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    """One Waadi signal for three recipients, two of whose topics cannot be written: two
    DEAD_LETTERED records, one per recipient, under different operation ids (one shared id
    made the indexer keep the first and refuse the second as a conflict)."""
    waadi = "waadi.admission-violation"
    sealed = ingress.seal(
        example_records()[waadi], signer="NLA", purpose="WTTA_TOEZICHT", signal=waadi
    )
    output = gateway.process(
        [ingress.record(sealed, topic=ingress_topic(waadi, "NLA"))],
        undeliverable=frozenset({delivery_topic(waadi, "BD"), delivery_topic(waadi, "JUSTIS")}),
    )
    assert [m.topic for m in output.deliveries] == [delivery_topic(waadi, "UWV")]
    parked = [r for r in output.audit if r.kind is EventKind.DEAD_LETTERED]
    assert sorted(r.recipient or "" for r in parked) == ["BD", "JUSTIS"]
    ids = [r.operation_id for r in output.audit]
    assert len(ids) == len(set(ids)), "two access records share an operation id"


def test_a_field_that_does_not_decode_to_a_python_value_is_an_invalid_record(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    # a timestamp beyond year 9999: typed as INVALID_RECORD, not an unexpected gateway error
    envelope = ingress.seal(
        mover("GM0363", make_bsn(31)), raw_fields={"detected_at": b"\x80\x80\x80\x80\x80\x80t"}
    )
    output = gateway.process([ingress.record(envelope)])
    assert output.deliveries == []
    assert reasons(output) == [ReasonCode.INVALID_RECORD]
    # audited, and the sender's ciphertext kept whole in the dead-letter topic
    assert [(r.kind, r.reason_codes) for r in output.audit] == [
        (EventKind.DEAD_LETTERED, (ReasonCode.INVALID_RECORD,))
    ]
    assert [m.value for m in output.dead_letters] == [envelope]


def test_a_bsn_spelled_in_other_digits_is_an_invalid_record(
    gateway: PolicyGateway, ingress: Ingress
) -> None:
    # a sender could otherwise give one person another pseudonym in the access log
    spec = load_catalogue().signal(SIGNAL)
    bsn = make_bsn(32)
    spelled = "".join(chr(0x0660 + int(c)) for c in bsn)  # Arabic-Indic digits
    raw = encode_fields(spec, mover("GM0363", bsn) | {"bsn": bsn})["bsn"]
    other = io.BytesIO()
    fastavro.schemaless_writer(other, spec.field_schemas["bsn"], spelled)
    assert other.getvalue() != raw
    envelope = ingress.seal(mover("GM0363", bsn), raw_fields={"bsn": other.getvalue()})
    output = gateway.process([ingress.record(envelope)])
    assert output.deliveries == []
    assert reasons(output) == [ReasonCode.INVALID_RECORD]
    # audited, and the sender's ciphertext kept whole in the dead-letter topic
    assert [(r.kind, r.reason_codes) for r in output.audit] == [
        (EventKind.DEAD_LETTERED, (ReasonCode.INVALID_RECORD,))
    ]
    assert [m.value for m in output.dead_letters] == [envelope]
