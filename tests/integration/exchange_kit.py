"""A running exchange for integration tests: the real gateway, publishers and subscribers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from sigex.broker.gateway import GatewayRunner
from sigex.broker.gateway_core import PolicyGateway
from sigex.clock import Clock, FixedClock
from sigex.consumers.subscriber import ReceivedSignal, Subscriber
from sigex.envelope import OutgoingRecord, SealContext, Sealer, pseudonym
from sigex.exchange.access_record import AccessRecord
from sigex.exchange.party_events import SEALED_EVENT_HEADER
from sigex.exchange.protocol import (
    TRACEPARENT,
    TraceContext,
    data_subjects,
    header_value,
    unpack_access_records,
)
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.exchange.topology import ingress_topic, ingress_topics
from sigex.identity import load_directory, load_party
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.roles import Role
from sigex.schemas.catalogue import Catalogue, load_catalogue
from sigex.schemas.codec import encode_fields
from tests.integration.conftest import SecureExchange
from tests.unit.schemas.conftest import make_bsn

EXCHANGE_TIME = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def fresh_bsn() -> str:
    return make_bsn(uuid.uuid4().int % 10**8)


@dataclass
class ExchangeKit:
    exchange: SecureExchange
    policy: CompiledPolicy
    catalogue: Catalogue
    clock: Clock
    runner: GatewayRunner
    _stop: threading.Event
    _thread: threading.Thread
    _publishers: dict[str, Publisher] = field(default_factory=dict)

    @property
    def state_dir(self) -> Any:
        return self.exchange.state_dir

    def renew_publisher(self, party: str) -> Publisher:
        """A new Publisher for ``party`` (a new producer, with fresh metadata), the old one
        closed without waiting long for what it could not send."""
        old = self._publishers.pop(party, None)
        if old is not None:
            old.close(timeout=5)
        return self.publisher(party)

    def publisher(self, party: str) -> Publisher:
        if party not in self._publishers:
            self._publishers[party] = Publisher(
                identity=load_party(self.state_dir, party),
                directory=load_directory(self.state_dir),
                policy=self.policy,
                catalogue=self.catalogue,
                connection=self.exchange.connection(party),
                record_key=load_or_create_record_key(self.state_dir, party),
                clock=self.clock,
            )
        return self._publishers[party]

    def record_key(self, party: str, signal: str, record: Mapping[str, object]) -> bytes:
        spec = self.catalogue.signal(signal)
        secret = load_or_create_record_key(self.state_dir, party)
        return pseudonym(secret, str(record[spec.key_field]))

    def audit_pseudonyms(self) -> SubjectPseudonyms:
        return SubjectPseudonyms(load_pseudonym_key(self.state_dir))

    def delivery_key(self, signal: str, record: Mapping[str, object], recipient: str) -> bytes:
        """The Kafka key the gateway gives a delivery to ``recipient`` (per recipient, subject)."""
        subjects = data_subjects(self.catalogue.signal(signal), record)
        pseudonyms = self.audit_pseudonyms()
        first = sorted(pseudonyms.pseudonym(s) for s in subjects)[0]
        return pseudonyms.delivery_key(recipient, first)

    def subscriber(self, party: str, purposes: tuple[str, ...], **options: Any) -> Subscriber:
        return Subscriber(
            identity=load_party(self.state_dir, party),
            directory=load_directory(self.state_dir),
            catalogue=self.catalogue,
            connection=self.exchange.connection(party),
            purposes=purposes,
            policy=self.policy,
            name=f"test-{uuid.uuid4().hex[:8]}",
            clock=self.clock,
            **options,
        )

    def collect(
        self,
        subscriber: Subscriber,
        done: Callable[[list[ReceivedSignal]], bool],
        timeout: float = 60.0,
    ) -> list[ReceivedSignal]:
        got: list[ReceivedSignal] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(got):
            subscriber.poll(got.append, timeout_ms=500)
        return got

    def seal_raw(
        self,
        party: str,
        signal: str,
        purpose: str,
        record: Mapping[str, object],
        *,
        topic: str | None = None,
    ) -> bytes:
        """Seal as ``party`` without the Publisher's policy check (a client that bypasses it)."""
        spec = self.catalogue.signal(signal)
        sealer = Sealer(
            identity=load_party(self.state_dir, party),
            directory=load_directory(self.state_dir),
            clock=self.clock,
        )
        context = SealContext(
            topic=topic or ingress_topic(signal, party),
            signal=signal,
            schema_fingerprint=spec.fingerprint,
            sender=party,
            recipient=Role.GATEWAY,
            purpose=purpose,
            agreement="ingress",
        )
        return sealer.seal([OutgoingRecord.of(context, encode_fields(spec, record))])[0]

    def send_raw(self, party: str, topic: str, envelope: bytes, key: bytes) -> TraceContext:
        trace = TraceContext.new()
        producer = KafkaProducer(acks="all", **self.exchange.connection(party).options())
        try:
            producer.send(
                topic, key=key, value=envelope, headers=[(TRACEPARENT, trace.header())]
            ).get(timeout=30)
        finally:
            producer.close()
        return trace

    def read_topic(self, topic: str, timeout: float = 5.0) -> list[Any]:
        """Every committed record of ``topic``, read as ADMIN (a super user)."""
        consumer = KafkaConsumer(
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **self.exchange.connection("ADMIN").options(),
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in partitions]
            if not assigned:
                return []
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            end = consumer.end_offsets(assigned)
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=300).values():
                    records += batch
                if all(consumer.position(tp) >= end[tp] for tp in assigned):
                    break
            return records
        finally:
            consumer.close()

    def wait_for(
        self, topic: str, match: Callable[[Any], bool], timeout: float = 60.0
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.read_topic(topic) if match(r)]
            if found:
                return found
            time.sleep(0.5)
        return []

    def access_records(
        self, topic: str, match: Callable[[AccessRecord], bool], timeout: float = 60.0
    ) -> list[AccessRecord]:
        """The access records on an audit or receipts topic that ``match`` (waits for one)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                record
                for message in self.read_topic(topic)
                if header_value(message.headers, SEALED_EVENT_HEADER) is None
                for entry in unpack_access_records(message.value)
                if match(record := AccessRecord.from_bytes(entry))
            ]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def close(self) -> None:
        for publisher in self._publishers.values():
            publisher.close()
        self._stop.set()
        self._thread.join(timeout=60)


def start_kit(
    exchange: SecureExchange,
    *,
    suffix: str | None = None,
    instance: str | None = None,
    clock: Clock | None = None,
) -> Iterator[ExchangeKit]:
    """A gateway in a group of its own (``suffix``; the same suffix is the same group, so a
    later kit with it continues where an earlier one stopped) and a kit around it. Its clock
    stands at EXCHANGE_TIME unless ``clock`` is given (e.g. the system's, for partners that
    run as processes of their own)."""
    kit = launch_kit(exchange, suffix=suffix, instance=instance, clock=clock)
    try:
        yield kit
    finally:
        kit.close()


def launch_kit(
    exchange: SecureExchange,
    *,
    suffix: str | None = None,
    instance: str | None = None,
    clock: Clock | None = None,
) -> ExchangeKit:
    """Start a gateway and return the kit; the caller closes it."""
    clock = clock or FixedClock(EXCHANGE_TIME)
    policy = load_policy()
    catalogue = load_catalogue()
    state = exchange.state_dir
    core = PolicyGateway(
        identity=load_party(state, Role.GATEWAY),
        directory=load_directory(state),
        policy=policy,
        catalogue=catalogue,
        pseudonymiser=SubjectPseudonyms(load_pseudonym_key(state)),
        clock=clock,
    )
    suffix = suffix or uuid.uuid4().hex[:8]
    runner = GatewayRunner(
        core,
        exchange.connection(Role.GATEWAY),
        ingress_topics(policy),
        instance=instance or f"test-{suffix}",
        group=f"sigex-gateway-test-{suffix}",
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not runner.ready and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    if not runner.ready:  # a test against a gateway that never started proves nothing
        stop.set()
        thread.join(timeout=30)
        raise AssertionError(f"the test gateway {runner!r} did not become ready within 60 s")
    return ExchangeKit(exchange, policy, catalogue, clock, runner, stop, thread)
