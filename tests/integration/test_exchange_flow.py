"""Each of the four signals through the real gateway on a broker with mutual TLS and ACLs.

The lawful recipients get exactly the agreed fields and nobody else gets
anything; every way a signal can be unlawful or broken is refused, parked in
the dead-letter topic without personal data, and audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from kafka import KafkaProducer

from sigex.consumers.subscriber import ReceivedSignal
from sigex.exchange.party_events import SEALED_EVENT, SEALED_EVENT_HEADER, PartyEventReader
from sigex.exchange.protocol import REASONS_HEADER, header_value
from sigex.exchange.topology import AUDIT_TOPIC, DEAD_LETTER_TOPIC, delivery_topic, ingress_topic
from tests.integration.conftest import SecureExchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, start_kit
from tests.unit.schemas.conftest import LHN_A, LHN_B, example_records

PARTIES = (
    "NLA",
    "UWV",
    "BD",
    "SVB",
    "RVIG",
    "JUSTIS",
    "GM0363",
    "GM0599",
    "GM0518",
    "GM0344",
    "GM0772",
    "GM1894",
)


@pytest.fixture(scope="module")
def kit(secure_exchange: SecureExchange) -> Iterator[ExchangeKit]:
    yield from start_kit(secure_exchange)


def record_of(signal: str, **changes: Any) -> dict[str, Any]:
    record = dict(example_records()[signal])
    record["signal_id"] = str(uuid.uuid4())
    record["detected_at"] = EXCHANGE_TIME
    record.update(changes)
    return record


def received_with(signal_id: str) -> Any:
    return lambda got: any(str(r.fields.get("signal_id")) == signal_id for r in got)


def only(got: list[ReceivedSignal], signal_id: str) -> ReceivedSignal:
    matching = [r for r in got if str(r.fields.get("signal_id")) == signal_id]
    assert len(matching) == 1, f"expected one delivery, got {len(matching)}"
    return matching[0]


def topics_holding(kit: ExchangeKit, signal: str, record: dict[str, Any]) -> set[str]:
    """Every delivery topic of ``signal`` that holds a delivery of ``record``.

    Deliveries are keyed per recipient, so each topic is searched for the key
    its own recipient would get.
    """
    found = set()
    for party in PARTIES:
        topic = delivery_topic(signal, party)
        key = kit.delivery_key(signal, record, party)
        if any(r.key == key for r in kit.read_topic(topic, timeout=20)):
            found.add(topic)
    return found


def deliver_and_check(
    kit: ExchangeKit,
    *,
    sender: str,
    signal: str,
    purpose: str,
    record: dict[str, Any],
    recipients: dict[str, set[str]],
) -> None:
    subscribers = {
        party: kit.subscriber(party, (purpose,), signals=(signal,)) for party in recipients
    }
    try:
        result = kit.publisher(sender).publish(signal, purpose, [record])
        assert not result.refused, result.refused
        assert set(result.published[0].recipients) == set(recipients)
        for party, fields in recipients.items():
            got = kit.collect(subscribers[party], received_with(record["signal_id"]))
            delivered = only(got, record["signal_id"])
            assert set(delivered.fields) == fields
            for name in fields:
                assert str(delivered.fields[name]) == str(record[name])
            assert delivered.sender == sender and delivered.purpose == purpose
    finally:
        for subscriber in subscribers.values():
            subscriber.close()
    assert topics_holding(kit, signal, record) == {delivery_topic(signal, p) for p in recipients}


def test_payroll_mismatch_reaches_the_municipality_with_its_fields(kit: ExchangeKit) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM0363")
    deliver_and_check(
        kit,
        sender="UWV",
        signal="payroll.bsn-mismatch",
        purpose="BRP_TERUGMELDING",
        record=record,
        recipients={
            "GM0363": {
                "signal_id",
                "detected_at",
                "bsn",
                "kind",
                "payroll_period",
                "municipality",
                "family_name",
                "birth_date",
            }
        },
    )


def test_payroll_mismatch_reaches_nla_only_under_suwi64(kit: ExchangeKit) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM0599")
    deliver_and_check(
        kit,
        sender="UWV",
        signal="payroll.bsn-mismatch",
        purpose="SUWI64_ARB",
        record=record,
        recipients={
            "NLA": {
                "signal_id",
                "detected_at",
                "bsn",
                "kind",
                "payroll_period",
                "employer_kvk",
                "employer_loonheffingennummer",
            }
        },
    )


def test_frequent_mover_reaches_the_municipality_of_the_address(kit: ExchangeKit) -> None:
    record = record_of("laa.frequent-mover", bsn=fresh_bsn(), municipality="GM0599")
    agreement = kit.policy.agreement("LAA-FREQUENT-MOVER")
    deliver_and_check(
        kit,
        sender="RVIG",
        signal="laa.frequent-mover",
        purpose="LAA_SIGNAAL",
        record=record,
        recipients={"GM0599": set(agreement.fields) & set(record)},
    )


def test_investigation_outcome_goes_back_to_rvig(kit: ExchangeKit) -> None:
    record = record_of(
        "laa.investigation-outcome", in_reply_to=str(uuid.uuid4()), concluded_on=date(2027, 1, 28)
    )
    agreement = kit.policy.agreement("LAA-INVESTIGATION-OUTCOME")
    deliver_and_check(
        kit,
        sender="GM0363",
        signal="laa.investigation-outcome",
        purpose="LAA_TERUGKOPPELING",
        record=record,
        recipients={"RVIG": set(agreement.fields)},
    )


def test_admission_violation_reaches_bd_uwv_and_justis_under_the_wtta(kit: ExchangeKit) -> None:
    record = record_of(
        "waadi.admission-violation",
        uitlener_kvk=f"{uuid.uuid4().int % 10**8:08d}",
        worker_bsns=[fresh_bsn(), fresh_bsn()],
        uitlener_loonheffingennummer=LHN_B,
        inlener_loonheffingennummer=LHN_A,
    )
    recipients = {
        party: set(kit.policy.agreement(agreement).fields) & set(record)
        for party, agreement in (
            ("BD", "WAADI-BD-WTTA"),
            ("UWV", "WAADI-UWV-WTTA"),
            ("JUSTIS", "WAADI-JUSTIS-WTTA"),
        )
    }
    deliver_and_check(
        kit,
        sender="NLA",
        signal="waadi.admission-violation",
        purpose="WTTA_TOEZICHT",
        record=record,
        recipients=recipients,
    )


# -- refusals --------------------------------------------------------------------------------


def test_the_publisher_refuses_a_wrong_purpose_at_once_and_audits_it(kit: ExchangeKit) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM0363")
    before = len(kit.read_topic("sigex.receipts.UWV"))
    result = kit.publisher("UWV").publish("payroll.bsn-mismatch", "LAA_SIGNAAL", [record])
    assert not result.published
    assert result.refused[0].reason_codes
    key = kit.record_key("UWV", "payroll.bsn-mismatch", record)
    ingress = kit.read_topic(ingress_topic("payroll.bsn-mismatch", "UWV"))
    assert all(r.key != key for r in ingress), "a refused record left the publisher"
    events = kit.read_topic("sigex.receipts.UWV")[before:]
    assert any(header_value(e.headers, SEALED_EVENT_HEADER) == SEALED_EVENT for e in events)
    assert all(record["bsn"].encode() not in e.value for e in events)


def assert_dead_lettered(
    kit: ExchangeKit, envelope: bytes, trace_id: str, code: str, bsn: str | None
) -> None:
    parked = kit.wait_for(DEAD_LETTER_TOPIC, lambda r: r.value == envelope)
    assert parked, f"nothing dead-lettered for {code}"
    reasons = (header_value(parked[0].headers, REASONS_HEADER) or b"").decode().split(",")
    assert code in reasons
    if bsn is not None:
        for letter in parked:
            assert bsn.encode() not in letter.value
            assert bsn.encode() not in (letter.key or b"")
            assert all(bsn.encode() not in value for _, value in letter.headers)
    audits = kit.access_records(
        AUDIT_TOPIC, lambda r: r.trace_id == trace_id and r.kind.value == "DEAD_LETTERED"
    )
    assert audits, f"no audit record for the dead letter ({code})"
    record = audits[0]
    assert code in record.reason_codes
    assert not record.disclosed_fields


@pytest.mark.parametrize(
    ("sender", "signal", "purpose", "code"),
    [
        ("UWV", "payroll.bsn-mismatch", "WTTA_TOEZICHT", "NO_LAWFUL_RECIPIENT"),
        ("UWV", "payroll.bsn-mismatch", "LA_BSN_FEEDBACK", "BASIS_UNDER_REVIEW"),
        ("NLA", "waadi.admission-violation", "SUWI64_FISC", "OUTSIDE_VALIDITY"),
    ],
    ids=["wrong-purpose", "basis-under-review", "outside-validity"],
)
def test_the_gateway_refuses_what_bypassed_the_publishers_check(
    kit: ExchangeKit, sender: str, signal: str, purpose: str, code: str
) -> None:
    bsn = fresh_bsn()
    changes = (
        {"bsn": bsn, "municipality": "GM0363"}
        if signal.startswith("payroll")
        else {"worker_bsns": [bsn]}
    )
    record = record_of(signal, **changes)
    envelope = kit.seal_raw(sender, signal, purpose, record)
    key = kit.record_key(sender, signal, record)
    trace = kit.send_raw(sender, ingress_topic(signal, sender), envelope, key)
    assert_dead_lettered(kit, envelope, trace.trace_id, code, bsn)
    assert topics_holding(kit, signal, record) == set()


def test_a_tampered_envelope_is_dead_lettered(kit: ExchangeKit) -> None:
    bsn = fresh_bsn()
    record = record_of("payroll.bsn-mismatch", bsn=bsn, municipality="GM0363")
    envelope = bytearray(kit.seal_raw("UWV", "payroll.bsn-mismatch", "BRP_TERUGMELDING", record))
    envelope[len(envelope) // 2] ^= 0x01
    key = kit.record_key("UWV", "payroll.bsn-mismatch", record)
    trace = kit.send_raw("UWV", ingress_topic("payroll.bsn-mismatch", "UWV"), bytes(envelope), key)
    assert_dead_lettered(kit, bytes(envelope), trace.trace_id, "ENVELOPE_INVALID", bsn)
    assert topics_holding(kit, "payroll.bsn-mismatch", record) == set()


def test_a_forged_sender_is_dead_lettered(kit: ExchangeKit) -> None:
    """NLA writes to its own ingress an envelope that JUSTIS signed: the signer is not NLA."""
    bsn = fresh_bsn()
    record = record_of("waadi.admission-violation", worker_bsns=[bsn])
    topic = ingress_topic("waadi.admission-violation", "NLA")
    envelope = kit.seal_raw(
        "JUSTIS", "waadi.admission-violation", "WTTA_TOEZICHT", record, topic=topic
    )
    key = kit.record_key("NLA", "waadi.admission-violation", record)
    trace = kit.send_raw("NLA", topic, envelope, key)
    assert_dead_lettered(kit, envelope, trace.trace_id, "SENDER_MISMATCH", bsn)
    assert topics_holding(kit, "waadi.admission-violation", record) == set()


def test_deliveries_and_refusals_are_audited_per_subject(kit: ExchangeKit) -> None:
    workers = [fresh_bsn(), fresh_bsn()]
    record = record_of(
        "waadi.admission-violation",
        worker_bsns=workers,
        uitlener_kvk=f"{uuid.uuid4().int % 10**8:08d}",
    )
    result = kit.publisher("NLA").publish("waadi.admission-violation", "WTTA_TOEZICHT", [record])
    trace_id = result.published[0].trace_id
    records = kit.access_records(
        AUDIT_TOPIC, lambda r: r.trace_id == trace_id and r.kind.value == "DELIVERED"
    )
    recipients = {r.recipient for r in records}
    assert recipients == {"BD", "UWV", "JUSTIS"}
    assert len({r.subject for r in records}) == 2, "one record per worker (data subject)"
    assert all(r.legal_basis == "NL.WAADI.WTTA" for r in records)
    for message in kit.read_topic(AUDIT_TOPIC):
        assert all(bsn.encode() not in message.value for bsn in workers)


# -- the subscriber's side ---------------------------------------------------------------------


def test_a_subscriber_refuses_a_purpose_it_did_not_declare(kit: ExchangeKit) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM0599")
    result = kit.publisher("UWV").publish("payroll.bsn-mismatch", "SUWI64_ARB", [record])
    trace_id = result.published[0].trace_id
    handed_over: list[ReceivedSignal] = []
    with kit.subscriber("NLA", ("SUWI64_FISC",), signals=("payroll.bsn-mismatch",)) as nla:
        receipts = []
        for _ in range(60):
            nla.poll(handed_over.append, timeout_ms=500)
            receipts = kit.access_records(
                "sigex.receipts.NLA", lambda r: r.trace_id == trace_id, timeout=0
            )
            if receipts:
                break
    assert all(str(r.fields.get("signal_id")) != record["signal_id"] for r in handed_over)
    assert [(r.kind.value, r.outcome.value, r.reason_codes) for r in receipts] == [
        ("RECEIVED", "DENY", ("PURPOSE_NOT_DECLARED",))
    ]


def test_a_failing_handler_gets_the_signal_again_and_it_is_acknowledged_once(
    kit: ExchangeKit,
) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM0518")
    result = kit.publisher("UWV").publish("payroll.bsn-mismatch", "BRP_TERUGMELDING", [record])
    trace_id = result.published[0].trace_id
    attempts: list[str] = []
    kept: list[ReceivedSignal] = []

    def flaky(signal: ReceivedSignal) -> None:
        if str(signal.fields.get("signal_id")) == record["signal_id"]:
            attempts.append(signal.message_id)
            if len(attempts) == 1:
                raise RuntimeError("the application's database is down")
        kept.append(signal)

    failures = 0
    with kit.subscriber("GM0518", ("BRP_TERUGMELDING",)) as inbox:
        for _ in range(120):
            try:
                inbox.poll(flaky, timeout_ms=500)
            except RuntimeError:
                failures += 1
            if len(attempts) >= 2:
                break
        for _ in range(4):  # a further poll must not offer it a third time
            inbox.poll(flaky, timeout_ms=300)
    assert failures == 1
    assert len(attempts) == 2 and attempts[0] == attempts[1], "the same message, offered again"
    only(kept, record["signal_id"])
    acknowledged = kit.access_records(
        "sigex.receipts.GM0518",
        lambda r: r.trace_id == trace_id and r.kind.value == "ACKNOWLEDGED",
    )
    assert len(acknowledged) == 1


def test_a_replayed_envelope_is_delivered_once_and_the_replay_dead_lettered(
    kit: ExchangeKit,
) -> None:
    bsn = fresh_bsn()
    record = record_of("payroll.bsn-mismatch", bsn=bsn, municipality="GM0344")
    envelope = kit.seal_raw("UWV", "payroll.bsn-mismatch", "BRP_TERUGMELDING", record)
    key = kit.record_key("UWV", "payroll.bsn-mismatch", record)
    topic = ingress_topic("payroll.bsn-mismatch", "UWV")
    kit.send_raw("UWV", topic, envelope, key)
    replay = kit.send_raw("UWV", topic, envelope, key)
    assert_dead_lettered(kit, envelope, replay.trace_id, "REPLAYED", bsn)
    delivery = kit.delivery_key("payroll.bsn-mismatch", record, "GM0344")
    delivered = [
        r
        for r in kit.read_topic(delivery_topic("payroll.bsn-mismatch", "GM0344"))
        if r.key == delivery
    ]
    assert len(delivered) == 1


def test_an_unknown_purpose_is_dead_lettered_and_the_gateway_goes_on(kit: ExchangeKit) -> None:
    bsn = fresh_bsn()
    record = record_of("payroll.bsn-mismatch", bsn=bsn, municipality="GM0363")
    envelope = kit.seal_raw("UWV", "payroll.bsn-mismatch", "not a purpose!", record)
    key = kit.record_key("UWV", "payroll.bsn-mismatch", record)
    trace = kit.send_raw("UWV", ingress_topic("payroll.bsn-mismatch", "UWV"), envelope, key)
    assert_dead_lettered(kit, envelope, trace.trace_id, "UNKNOWN_PURPOSE", bsn)
    test_payroll_mismatch_reaches_nla_only_under_suwi64(kit)  # still delivering


def test_sender_controlled_headers_and_keys_do_not_travel_on(kit: ExchangeKit) -> None:
    bsn = fresh_bsn()
    record = record_of("payroll.bsn-mismatch", bsn=bsn, municipality="GM0772")
    envelope = kit.seal_raw("UWV", "payroll.bsn-mismatch", "BRP_TERUGMELDING", record)
    producer = KafkaProducer(acks="all", **kit.exchange.connection("UWV").options())
    try:
        producer.send(
            ingress_topic("payroll.bsn-mismatch", "UWV"),
            key=bsn.encode(),  # a careless partner keys by BSN
            value=envelope,
            headers=[("traceparent", f"BSN {bsn}".encode())],
        ).get(timeout=30)
    finally:
        producer.close()
    delivered = kit.wait_for(
        delivery_topic("payroll.bsn-mismatch", "GM0772"),
        lambda r: r.key == kit.delivery_key("payroll.bsn-mismatch", record, "GM0772"),
    )
    assert delivered
    for message in delivered:
        assert bsn.encode() not in (message.key or b"")
        assert all(bsn.encode() not in value for _, value in message.headers)


def test_a_delivery_that_does_not_open_is_refused_and_on_record(kit: ExchangeKit) -> None:
    topic = delivery_topic("payroll.bsn-mismatch", "GM1894")
    admin = KafkaProducer(acks="all", **kit.exchange.connection("ADMIN").options())
    try:
        admin.send(topic, value=b"not an envelope at all").get(timeout=30)
    finally:
        admin.close()
    before = len(kit.read_topic("sigex.receipts.GM1894"))
    handed: list[ReceivedSignal] = []
    with kit.subscriber("GM1894", ("BRP_TERUGMELDING",)) as inbox:
        for _ in range(60):
            inbox.poll(handed.append, timeout_ms=500)
            if inbox.refused:
                break
        assert inbox.refused >= 1
    events = [
        m
        for m in kit.read_topic("sigex.receipts.GM1894")[before:]
        if header_value(m.headers, SEALED_EVENT_HEADER) == SEALED_EVENT
    ]
    reader = PartyEventReader.for_audit_service(kit.state_dir, kit.clock)
    records = [r for m in events for r in reader.records(m.value, topic=m.topic, party="GM1894")]
    assert any(
        r.kind.value == "RECEIVED"
        and r.outcome.value == "DENY"
        and r.reason_codes == ("ENVELOPE_INVALID",)
        and r.message_id.startswith("offset-")
        for r in records
    )


def test_receipts_carry_the_legal_basis_and_agreement_of_the_gateways_decision(
    kit: ExchangeKit,
) -> None:
    record = record_of("payroll.bsn-mismatch", bsn=fresh_bsn(), municipality="GM1894")
    result = kit.publisher("UWV").publish("payroll.bsn-mismatch", "BRP_TERUGMELDING", [record])
    trace_id = result.published[0].trace_id
    with kit.subscriber("GM1894", ("BRP_TERUGMELDING",)) as inbox:
        handed = only(kit.collect(inbox, received_with(record["signal_id"])), record["signal_id"])
    kit.access_records(
        "sigex.receipts.GM1894",
        lambda r: r.trace_id == trace_id and r.kind.value == "ACKNOWLEDGED",
    )
    receipts = kit.access_records("sigex.receipts.GM1894", lambda r: r.trace_id == trace_id)
    assert sorted(r.kind.value for r in receipts) == ["ACKNOWLEDGED", "RECEIVED"]
    for receipt in receipts:
        assert receipt.legal_basis == handed.legal_basis
        assert (receipt.agreement_id, receipt.agreement_version) == (
            handed.agreement_id,
            handed.agreement_version,
        )
    assert handed.legal_basis and handed.agreement_id
