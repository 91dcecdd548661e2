"""A profiling aid, not a benchmark: CPU per signal of each stage of the exchange, in process.

Run: ``.venv/bin/python bench/profile_stages.py [--signals N] [--profile STAGE]``.

The same ``payroll.bsn-mismatch`` records as ``bench/bench_e2e.py`` go through the
three stages one after another in this one process, with no Kafka and no broker:

1. **publisher**: ``Publisher.publish`` (validate, decide, seal), its producer replaced
   by a list that keeps what would have been sent;
2. **gateway**: ``PolicyGateway.process`` over those envelopes in batches of 500, and
   the Kafka records of its output built (``GatewayOutput.all``);
3. **subscribers**: each municipality's ``Subscriber`` opens, checks and hands over its
   deliveries and builds its receipts, packed as they would be sent.

It prints microseconds of CPU (``time.process_time``) per signal for each stage, so
that a change to one stage can be measured in seconds, before the end-to-end
benchmark measures it with Kafka. ``--profile gateway`` (or ``publisher``,
``subscribers``) prints a cProfile of that stage alone. Nothing is written.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e_roles import PURPOSE, SENDER, SIGNAL, mismatch_records

from sigex.broker.gateway_core import IncomingRecord, PolicyGateway
from sigex.clock import SystemClock
from sigex.consumers.subscriber import Subscriber
from sigex.envelope import Opener, Sealer
from sigex.exchange.protocol import pack_access_records
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.identity import init_federation, load_directory, load_party, read_parties
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher
from sigex.schemas.catalogue import load_catalogue

REPO = Path(__file__).resolve().parents[1]
MUNICIPALITIES = ("GM0363", "GM0599", "GM0518")
BATCH = 500


class _Sent:
    def get(self, timeout: float | None = None) -> None:
        return None


class _KeptRecords:
    """Stands in for the Publisher's KafkaProducer: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]] = []

    def send(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes = b"",
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> _Sent:
        self.sent.append((topic, key, value, tuple(headers or ())))
        return _Sent()

    def flush(self) -> None:
        return None


class _Message:
    """The fields of a Kafka ConsumerRecord that the Subscriber reads."""

    def __init__(self, topic: str, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.value = topic, 0, offset, value


class Stages:
    """The three stages over one federation made in a temporary folder."""

    def __init__(self) -> None:
        state = Path(tempfile.mkdtemp(prefix="sigex-stages-"))
        parties = read_parties(REPO / "policies" / "parties.yaml")
        init_federation(state, parties, SystemClock())
        policy, catalogue, directory = load_policy(), load_catalogue(), load_directory(state)
        self.kept = _KeptRecords()
        # no broker: the objects are made without their Kafka clients
        publisher = Publisher.__new__(Publisher)
        publisher.__dict__.update(
            _party=SENDER,
            _policy=policy,
            _catalogue=catalogue,
            _record_key=b"k" * 32,
            _clock=SystemClock(),
            _max_message_bytes=1 << 20,
            _sealer=Sealer(
                identity=load_party(state, SENDER), directory=directory, clock=SystemClock()
            ),
            _producer=self.kept,
        )
        self.publisher = publisher
        self.gateway = PolicyGateway(
            identity=load_party(state, "GATEWAY"),
            directory=directory,
            policy=policy,
            catalogue=catalogue,
            pseudonymiser=SubjectPseudonyms(load_pseudonym_key(state)),
        )
        self.subscribers: dict[str, Subscriber] = {}
        for party in MUNICIPALITIES:
            subscriber = Subscriber.__new__(Subscriber)
            identity = load_party(state, party)
            subscriber.__dict__.update(
                _party=party,
                _catalogue=catalogue,
                _policy=policy,
                _purposes=frozenset({PURPOSE}),
                _clock=SystemClock(),
                _opener=Opener(identity=identity, directory=directory, clock=SystemClock()),
                _sealer=Sealer(identity=identity, directory=directory, clock=SystemClock()),
                _seen=OrderedDict(),
                _dedup_capacity=100_000,
                _restored=set(),
                acknowledged=0,
                refused=0,
                duplicates=0,
            )
            self.subscribers[party] = subscriber

    def run(self, records: Sequence[dict[str, object]], profiled: str | None) -> dict[str, float]:
        profiler = cProfile.Profile()
        seconds: dict[str, float] = {}

        def timed(stage: str, work: Any) -> Any:
            started = time.process_time()
            if stage == profiled:
                profiler.enable()
            result = work()
            if stage == profiled:
                profiler.disable()
            seconds[stage] = time.process_time() - started
            return result

        timed("publisher", lambda: self._publish(records))
        deliveries = timed("gateway", self._decide)
        if len(deliveries) != len(records):
            raise RuntimeError(f"{len(deliveries)} deliveries for {len(records)} signals")
        handed = timed("subscribers", lambda: self._receive(deliveries))
        if handed != len(records):
            raise RuntimeError(f"{handed} signals handed over of {len(records)}")
        if profiled:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return seconds

    def _publish(self, records: Sequence[dict[str, object]]) -> None:
        for start in range(0, len(records), BATCH):
            self.publisher.publish(SIGNAL, PURPOSE, records[start : start + BATCH])

    def _decide(self) -> list[tuple[str, bytes]]:
        sent, self.kept.sent = self.kept.sent, []
        incoming = [
            IncomingRecord(topic, 0, offset, key, value, headers)
            for offset, (topic, key, value, headers) in enumerate(sent)
        ]
        deliveries: list[tuple[str, bytes]] = []
        for start in range(0, len(incoming), BATCH):
            output = self.gateway.process(incoming[start : start + BATCH])
            output.all()
            deliveries += [(d.topic, d.value) for d in output.deliveries]
        return deliveries

    def _receive(self, deliveries: Sequence[tuple[str, bytes]]) -> int:
        handed = 0
        for party, subscriber in self.subscribers.items():
            mine = [value for topic, value in deliveries if topic.endswith(f".{party}")]
            for start in range(0, len(mine), BATCH):
                receipts: list[Any] = []
                sealed: list[bytes] = []
                names: list[str] = []
                for offset, value in enumerate(mine[start : start + BATCH]):
                    message = _Message(f"sigex.{SIGNAL}.out.{party}", offset, value)
                    handed += subscriber._one(message, lambda _: None, receipts, sealed, names)
                pack_access_records([receipt.to_bytes() for receipt in receipts])
        return handed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=5_000)
    parser.add_argument("--profile", choices=("publisher", "gateway", "subscribers"))
    args = parser.parse_args(argv)
    stages = Stages()
    stages.run(mismatch_records(1_000, 7, MUNICIPALITIES, 1, 0), None)  # warm up
    records = mismatch_records(args.signals, 1_000, MUNICIPALITIES, 2, 0)
    seconds = stages.run(records, args.profile)
    for stage, spent in seconds.items():
        print(f"{stage:12s} {1e6 * spent / len(records):7.1f} µs of CPU per signal")
    print(f"{'together':12s} {1e6 * sum(seconds.values()) / len(records):7.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
