"""Publishing a file all or nothing and idempotently, on the TLS broker with ACLs (issue 18).

- A file with a bad record at line 301 puts nothing at all on the ingress topic.
- Publishing a file, the same file again, and a file with its first half plus
  new records delivers each signal exactly once per recipient: the message id
  is derived from the signal's own id, so the gateway refuses the copies.
- A municipality cannot report an investigation outcome in another
  municipality's name: refused at publish, and dead-lettered by the gateway
  when a client skips the publisher's check.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from sigex.cli import main
from sigex.envelope import derived_message_id
from sigex.exchange.protocol import REASONS_HEADER, SOURCE_HEADER, header_value
from sigex.exchange.topology import DEAD_LETTER_TOPIC, delivery_topic, ingress_topic
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.producers.records_file import PartlySent, check_file, publish_file
from tests.integration.conftest import SecureExchange
from tests.integration.exchange_kit import EXCHANGE_TIME, ExchangeKit, fresh_bsn, start_kit

SIGNAL = "laa.frequent-mover"
PURPOSE = "LAA_SIGNAAL"
SENDER = "RVIG"
MUNICIPALITIES = ("GM0363", "GM0599")


@pytest.fixture(scope="module")
def kit(secure_exchange: SecureExchange) -> Iterator[ExchangeKit]:
    yield from start_kit(secure_exchange)


def mover(municipality: str) -> dict[str, Any]:
    """A frequent-mover record as a line of a JSON-lines file."""
    return {
        "signal_id": str(uuid.uuid4()),
        "detected_at": EXCHANGE_TIME.isoformat().replace("+00:00", "Z"),
        "bsn": fresh_bsn(),
        "municipality": municipality,
        "postcode": "1011AB",
        "house_number": 12,
        "house_number_addition": None,
        "moves_in_period": 6,
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "profile": "LAA-VV-01",
    }


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def end_offsets(kit: ExchangeKit, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(
        group_id=None, enable_auto_commit=False, **kit.exchange.connection("ADMIN").options()
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def records_since(kit: ExchangeKit, topic: str, since: dict[int, int]) -> list[Any]:
    """The committed data records of ``topic`` after ``since`` (transaction markers aside)."""
    return [r for r in kit.read_topic(topic, timeout=20) if r.offset >= since.get(r.partition, 0)]


def publish(kit: ExchangeKit, path: Path) -> int:
    spec = kit.catalogue.signal(SIGNAL)
    checked = check_file(path, spec, SENDER, PURPOSE)
    outcome = publish_file(kit.publisher(SENDER), checked, spec, PURPOSE, batch=16)
    assert not outcome.refused, outcome.refused
    for line in outcome.published:  # the result names the envelope's message id
        record = json.loads(path.read_text(encoding="utf-8").splitlines()[line.line - 1])
        expected = derived_message_id(SENDER, SIGNAL, PURPOSE, uuid.UUID(record["signal_id"]))
        assert uuid.UUID(line.message_id).bytes == expected
        assert line.trace_id and line.recipients == (record["municipality"],)
    return len(outcome.published)


def test_a_bad_record_at_line_301_puts_nothing_on_the_broker(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    topic = ingress_topic(SIGNAL, SENDER)
    before = end_offsets(kit, topic)
    records = [mover(MUNICIPALITIES[n % 2]) for n in range(400)]
    bad_lines = {
        "integer for a date": dict(records[300], period_start=20089),
        "not a UUID": dict(records[300], signal_id="not-a-uuid"),
        "BSN failing the check digit": dict(records[300], bsn="111111111"),
        "unknown field": dict(records[300], colour="red"),
    }
    for case, bad in bad_lines.items():
        path = write_lines(tmp_path / "records.jsonl", [*records[:300], bad, *records[301:]])
        result = CliRunner().invoke(
            main,
            [
                "publish",
                "--as",
                SENDER,
                "--signal",
                SIGNAL,
                "--purpose",
                PURPOSE,
                "--state-dir",
                str(kit.state_dir),
                "--bootstrap",
                kit.exchange.bootstrap,
                str(path),
            ],
        )
        assert result.exit_code == 2, (case, result.output)
        assert "line 301: " in result.output and "nothing was sent" in result.output, case
        assert "Traceback" not in result.output
    assert end_offsets(kit, topic) == before


def test_publishing_again_delivers_each_signal_exactly_once(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    first = [mover(MUNICIPALITIES[n % 2]) for n in range(40)]
    later = [mover(MUNICIPALITIES[n % 2]) for n in range(20)]
    expected = Counter(r["municipality"] for r in first + later)
    since = {m: end_offsets(kit, delivery_topic(SIGNAL, m)) for m in MUNICIPALITIES}
    dead_since = end_offsets(kit, DEAD_LETTER_TOPIC)
    ingress_since = end_offsets(kit, ingress_topic(SIGNAL, SENDER))
    subscribers = {m: kit.subscriber(m, (PURPOSE,), signals=(SIGNAL,)) for m in MUNICIPALITIES}
    try:
        whole = write_lines(tmp_path / "whole.jsonl", first)
        assert publish(kit, whole) == 40
        assert publish(kit, whole) == 40  # the same file again
        half = write_lines(tmp_path / "half.jsonl", first[:20] + later)
        assert publish(kit, half) == 40  # its first half again, and 20 new records
        submitted = 120

        # wait until the gateway has accounted for every submission: delivered or dead-lettered
        delivered, parked = wait_until_accounted(kit, since, dead_since, submitted, ingress_since)
        assert {m: len(d) for m, d in delivered.items()} == dict(expected)
        assert len(parked) == submitted - 60
        for letter in parked:  # a copy of a message the gateway has seen: not an alarm
            reasons = (header_value(letter.headers, REASONS_HEADER) or b"").decode()
            assert reasons.split(",") == ["REPLAYED"], reasons

        for municipality, subscriber in subscribers.items():
            wanted = {r["signal_id"] for r in first + later if r["municipality"] == municipality}
            got = kit.collect(
                subscriber,
                lambda got, wanted=wanted: wanted <= {str(r.fields["signal_id"]) for r in got},
                timeout=120,
            )
            got += kit.collect(subscriber, lambda _: False, timeout=3)  # anything more
            counts = Counter(
                str(r.fields["signal_id"]) for r in got if str(r.fields["signal_id"]) in wanted
            )
            assert set(counts) == wanted
            assert set(counts.values()) == {1}
    finally:
        for subscriber in subscribers.values():
            subscriber.close()


def fresh_publisher(kit: ExchangeKit) -> Publisher:
    """A publisher of its own, as a new run of ``sigex publish`` would make."""
    return Publisher(
        identity=load_party(kit.state_dir, SENDER),
        directory=load_directory(kit.state_dir),
        policy=load_policy(),
        catalogue=kit.catalogue,
        connection=kit.exchange.connection(SENDER),
        record_key=load_or_create_record_key(kit.state_dir, SENDER),
        clock=kit.clock,
    )


def _from_this_test(letter: Any, ingress_since: dict[int, int]) -> bool:
    """A dead letter of a record this test published (after ``ingress_since``).

    The module's gateway has a group of its own and reads the ingress topic from
    the start, so it also refuses (as replays) what earlier tests published: those
    dead letters are not this test's to count.
    """
    source = (header_value(letter.headers, SOURCE_HEADER) or b"").decode()
    topic, _, rest = source.partition("/")
    partition, _, offset = rest.partition("/")
    return topic == ingress_topic(SIGNAL, SENDER) and int(offset) >= ingress_since.get(
        int(partition), 0
    )


def wait_until_accounted(
    kit: ExchangeKit,
    since: dict[str, dict[int, int]],
    dead_since: dict[int, int],
    total: int,
    ingress_since: dict[int, int],
) -> tuple[dict[str, list[Any]], list[Any]]:
    """Deliveries per municipality and this test's dead letters, once ``total`` are decided."""
    deadline = time.monotonic() + 240
    while True:
        delivered = {
            m: records_since(kit, delivery_topic(SIGNAL, m), since[m]) for m in MUNICIPALITIES
        }
        parked = [
            letter
            for letter in records_since(kit, DEAD_LETTER_TOPIC, dead_since)
            if _from_this_test(letter, ingress_since)
        ]
        if sum(map(len, delivered.values())) + len(parked) >= total:
            return delivered, parked
        if time.monotonic() > deadline:
            return delivered, parked
        time.sleep(1)


def test_a_run_the_broker_stops_half_way_says_so_and_a_rerun_sends_only_the_rest(
    kit: ExchangeKit, tmp_path: Path
) -> None:
    spec = kit.catalogue.signal(SIGNAL)
    topic = ingress_topic(SIGNAL, SENDER)
    records = [mover(MUNICIPALITIES[n % 2]) for n in range(30)]
    records[20]["profile"] = "P" * 20_000  # more than the ingress topic takes for a while
    path = write_lines(tmp_path / "records.jsonl", records)
    checked = check_file(path, spec, SENDER, PURPOSE)
    since = {m: end_offsets(kit, delivery_topic(SIGNAL, m)) for m in MUNICIPALITIES}
    dead_since = end_offsets(kit, DEAD_LETTER_TOPIC)
    ingress_since = end_offsets(kit, ingress_topic(SIGNAL, SENDER))
    admin = kit.exchange.admin()
    limit = {"max.message.bytes": "8000"}
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=limit)])
    try:
        with fresh_publisher(kit) as publisher, pytest.raises(PartlySent) as caught:
            publish_file(publisher, checked, spec, PURPOSE, batch=1)
    finally:
        default = {"max.message.bytes": ("DELETE", None)}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=default)])
        admin.close()
    message = str(caught.value)
    assert "20 of 30 records reached the broker (through line 20)" in message, message
    assert "Run the same command again" in message

    submitted = caught.value.sent
    deadline = time.monotonic() + 60  # until the broker takes the large record again
    while True:
        try:
            with fresh_publisher(kit) as publisher:
                outcome = publish_file(publisher, checked, spec, PURPOSE, batch=1)
            break
        except PartlySent as again:  # the old limit still held: a re-run is safe anyway
            submitted += again.sent
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    assert len(outcome.published) == 30
    submitted += 30
    delivered, parked = wait_until_accounted(kit, since, dead_since, submitted, ingress_since)
    expected = Counter(r["municipality"] for r in records)
    assert {m: len(d) for m, d in delivered.items()} == dict(expected)
    assert len(parked) == submitted - 30
    for letter in parked:
        assert (header_value(letter.headers, REASONS_HEADER) or b"").decode() == "REPLAYED"


def outcome_for(municipality: str) -> dict[str, object]:
    return {
        "signal_id": str(uuid.uuid4()),
        "detected_at": EXCHANGE_TIME,
        "in_reply_to": str(uuid.uuid4()),
        "municipality": municipality,
        "outcome": "ADDRESS_CONFIRMED",
        "concluded_on": date(2027, 1, 28),
    }


def test_a_municipality_cannot_report_an_outcome_for_another(kit: ExchangeKit) -> None:
    signal, purpose = "laa.investigation-outcome", "LAA_TERUGKOPPELING"
    topic = ingress_topic(signal, "GM0599")
    before = end_offsets(kit, topic)
    result = kit.publisher("GM0599").publish(signal, purpose, [outcome_for("GM0363")])
    assert not result.published
    assert result.refused[0].reason_codes == ("SENDER_NOT_IN_FIELD",)
    assert end_offsets(kit, topic) == before

    # a client that skips the publisher's check: the gateway refuses it as well
    record = outcome_for("GM0363")
    envelope = kit.seal_raw("GM0599", signal, purpose, record)
    kit.send_raw("GM0599", topic, envelope, b"outcome")
    parked = kit.wait_for(DEAD_LETTER_TOPIC, lambda r: r.value == envelope)
    assert parked, "the gateway did not dead-letter the outcome"
    reasons = (header_value(parked[0].headers, REASONS_HEADER) or b"").decode().split(",")
    assert "SENDER_NOT_IN_FIELD" in reasons
