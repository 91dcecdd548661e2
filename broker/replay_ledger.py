"""The gateway's durable replay ledger: every admitted message id, shared by all instances.

The replay guard of one gateway process is memory; this ledger makes it
durable and shared. For each message id the gateway admits it writes one
entry to ``sigex.gateway.ledger`` **in the same transaction** as the
deliveries and access records of that message, so the ledger holds exactly
the ids whose deliveries were committed: an aborted transaction leaves
neither. A batch's entries are packed into as few Kafka records as fit
(:func:`~sigex.broker.ledger_entry.pack_ledger_entries`), each keyed by its
first message id (a random UUID, not personal data). An entry says when the
sender signed the message, a keyed digest of its content (HMAC under the
federation's audit pseudonym key, so the ledger on the broker's disks does not
let anyone test guesses of a record's content) and which ingress record it
came from.

Every gateway instance reads the whole ledger (every partition, no consumer
group, ``read_committed``): at start up to its end before it decides
anything, and then before each batch whatever other instances have committed
since. So a replay is refused whatever restarted in between and whichever
instance owns the partition it lands on. The topic is compacted and deleted
after the replay window plus a day; an id older than the window is refused by
its signed timestamp anyway.

What it cannot close: two copies of one message id decided at nearly the same
moment by two instances, before either sees the other's commit (a window of
one batch, plus the moment Kafka takes to write a commit's markers after
``commit_transaction`` returns). The recipients' subscribers drop a message id
they already took, and the access log shows both deliveries.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from sigex.broker.errors import GatewayError
from sigex.broker.ledger_entry import parse_ledger_record
from sigex.envelope import ReplayGuard
from sigex.exchange.topology import LEDGER_TOPIC
from sigex.logs import get_logger
from sigex.transport import KafkaConnection

_log = get_logger(__name__)

#: the header naming the gateway process that wrote a ledger record (a random token)
LEDGER_WRITER_HEADER = "sigex-ledger-writer"
#: how long a gateway waits at start to read the whole ledger before giving up
RESTORE_TIMEOUT_SECONDS = 120.0


class LedgerUnavailable(GatewayError):
    """The replay ledger could not be read: the gateway must not decide without it."""


class ReplayLedger:
    """Reads the ledger into a :class:`ReplayGuard`: all of it at start, then what is new."""

    def __init__(self, connection: KafkaConnection, topic: str = LEDGER_TOPIC) -> None:
        self._topic = topic
        self._consumer = KafkaConsumer(
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
            **connection.options(),
        )
        self._partitions: list[TopicPartition] = []
        self.restored = 0

    def close(self) -> None:
        self._consumer.close()

    def restore(self, guard: ReplayGuard, timeout: float = RESTORE_TIMEOUT_SECONDS) -> int:
        """Read every committed entry into ``guard``; raises LedgerUnavailable if it cannot."""
        try:
            partitions = self._consumer.partitions_for_topic(self._topic)
        except KafkaError as error:
            message = f"replay ledger {self._topic}: {type(error).__name__}"
            raise LedgerUnavailable(message) from None
        if not partitions:
            raise LedgerUnavailable(
                f"replay ledger topic {self._topic} does not exist: run `sigex provision`"
            )
        self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        if not self.catch_up(guard, timeout):
            raise LedgerUnavailable(
                f"replay ledger {self._topic}: not read to its end in {timeout:.0f} s"
            )
        _log.info("gateway.ledger_restored", entries=self.restored, remembered=len(guard))
        return self.restored

    def catch_up(
        self, guard: ReplayGuard, timeout: float = 10.0, skip_writer: bytes | None = None
    ) -> bool:
        """Read what was committed up to now (by any instance) into ``guard``.

        Returns False when the ledger could not be read to the end it had when
        called within ``timeout``: the caller must not decide new messages then.
        Records marked with ``skip_writer`` are not read: the calling process wrote
        them, and ``guard`` holds their entries already (a process that withdrew
        entries, because it could not tell whether their transaction committed,
        draws a new token first, so those are read back).
        """
        deadline = time.monotonic() + timeout
        try:
            ends = self._consumer.end_offsets(self._partitions)
            while any(self._consumer.position(tp) < ends[tp] for tp in self._partitions):
                if time.monotonic() > deadline:
                    return False
                self._take(guard, self._consumer.poll(timeout_ms=200), skip_writer)
        except KafkaError as error:
            _log.warning("gateway.ledger_unreadable", error=type(error).__name__)
            return False
        return True

    def _take(
        self, guard: ReplayGuard, batch: dict[Any, list[Any]], skip_writer: bytes | None = None
    ) -> None:
        skip = None if skip_writer is None else (LEDGER_WRITER_HEADER, skip_writer)
        for messages in batch.values():
            for message in messages:
                if skip is not None and skip in (message.headers or ()):
                    continue
                try:
                    entries = parse_ledger_record(message.key, message.value)
                except (ValueError, KeyError, TypeError):
                    _log.warning("gateway.ledger_record_unreadable", offset=message.offset)
                    continue
                for entry in entries:
                    guard.remember(entry.message_id, entry.signed_at, entry.digest)
                self.restored += len(entries)
