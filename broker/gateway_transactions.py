"""The gateway's transactional producer, with a deadline on every step that can block.

kafka-python waits without a limit for a transaction's offsets to be added, for its
commit and for its abort. When a broker is lost mid-transaction (it led a partition
or was the transaction coordinator), such a wait may never end: the gateway then
hangs with records waiting, while its process looks alive. Here each of those steps
waits at most ``step_seconds``; a step that does not finish raises
:class:`TransactionStepTimedOut` (a ``KafkaTimeoutError``), and :meth:`abort` either
aborts the transaction or, if the producer cannot even do that, replaces it with a
new one under the same transactional id. The broker then fences the old one (a new
epoch) and completes or aborts whatever it left open, so nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from threading import Event
from typing import Any

from kafka import KafkaProducer
from kafka.errors import (
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from sigex.logs import get_logger

_log = get_logger(__name__)

#: How long one step of a transaction (offsets, commit, abort) may take.
DEFAULT_STEP_SECONDS = 30.0


class TransactionStepTimedOut(KafkaTimeoutError):  # type: ignore[misc]  # untyped library
    """A step of a transaction did not finish in time; the transaction is aborted."""


#: What the broker (or the client) refuses about one message itself: sending it again fails again.
REFUSED_MESSAGE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)


class MessagesRefused(KafkaError):  # type: ignore[misc]  # untyped library
    """Some messages of a transaction were refused for what they are (too large, invalid).

    ``indexes`` are their positions in the messages given to :meth:`BoundedTransactions.commit`;
    the transaction is not committed.
    """

    def __init__(self, indexes: tuple[int, ...], reason: str) -> None:
        super().__init__(f"{len(indexes)} message(s) refused: {reason}")
        self.indexes = indexes


class BoundedTransactions:
    """Begin, fill and commit transactions where no step waits for ever."""

    def __init__(
        self,
        options: Mapping[str, object],
        transactional_id: str,
        *,
        step_seconds: float = DEFAULT_STEP_SECONDS,
        stop: Event | None = None,
    ) -> None:
        self._stop = stop or Event()
        self._options = dict(options)
        self._transactional_id = transactional_id
        self._step_ms = int(step_seconds * 1000)
        self._producer: KafkaProducer | None = None
        self.renewals = 0

    def start(self) -> None:
        """Make the producer and register its transactional id (fencing any older one)."""
        self._producer = KafkaProducer(
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
            transaction_timeout_ms=20_000,
            # a send waits this long for metadata (an unknown topic) before it fails
            max_block_ms=min(self._step_ms, 60_000),
            **self._options,
        )
        try:
            self._producer.init_transactions()  # bounded by max_block_ms
        except KafkaError:
            self._producer.close(timeout=0)
            self._producer = None
            raise

    def start_when_possible(self, stop: Event) -> bool:
        """:meth:`start`, tried again while the cluster cannot register the producer yet
        (a new cluster creating its transaction log, a coordinator that moved).
        False when ``stop`` was set first."""
        while not stop.is_set():
            try:
                self.start()
                return True
            except KafkaTimeoutError as error:
                _log.warning("gateway.producer_not_registered", error=type(error).__name__)
                stop.wait(1.0)
        return False

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:  # stopped while it was being renewed
            raise TransactionStepTimedOut("the producer is being replaced")
        return self._producer

    def commit(
        self,
        messages: Iterable[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
        offsets: Mapping[Any, Any],
        group_metadata: Any,
    ) -> None:
        """One transaction: ``messages`` (topic, key, value, headers) and the offsets."""
        producer = self.producer
        producer.begin_transaction()
        futures: list[Any] = []
        refused: list[int] = []
        reason = ""
        for index, (topic, key, value, headers) in enumerate(messages):
            try:
                futures.append(producer.send(topic, key=key, value=value, headers=headers))
            except REFUSED_MESSAGE_ERRORS as error:  # too large for this client
                refused.append(index)
                futures.append(None)
                reason = type(error).__name__
        if refused:
            raise MessagesRefused(tuple(refused), reason)
        manager = producer._transaction_manager  # the only way to bound the waits
        try:
            self._wait(manager.send_offsets_to_transaction(offsets, group_metadata), "add offsets")
            self._wait(manager.begin_commit(), "commit")
        except KafkaError as error:
            refused = [i for i, f in enumerate(futures) if _refused_for_itself(f)]
            if refused:
                raise MessagesRefused(tuple(refused), type(error).__name__) from error
            raise
        for future in futures:  # a commit that succeeded wrote them all; say so if not
            if future.failed():
                raise future.exception

    def abort(self) -> None:
        """Abort the open transaction; a producer that cannot is replaced (and fenced)."""
        try:
            manager = self.producer._transaction_manager
            self._wait(manager.begin_abort(), "abort")
        except KafkaError as error:
            _log.warning("gateway.producer_renewed", reason=type(error).__name__)
            self.renew()

    def renew(self) -> None:
        """A new producer under the same transactional id; the broker fences the old one."""
        old, self._producer = self._producer, None
        if old is not None:
            try:
                old.close(timeout=0)
            except Exception as error:  # a wedged producer is dropped, not waited for
                _log.warning("gateway.producer_close_failed", error=type(error).__name__)
        self.start_when_possible(self._stop)
        self.renewals += 1

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self._step_ms / 1000)
            self._producer = None

    def _wait(self, result: Any, step: str) -> None:
        self.producer._sender.wakeup()  # as KafkaProducer's own methods do
        if not result.wait(timeout_ms=self._step_ms):
            raise TransactionStepTimedOut(f"{step} did not finish in {self._step_ms} ms")


def _refused_for_itself(future: Any) -> bool:
    return bool(
        future is not None
        and future.is_done
        and future.failed()
        and isinstance(future.exception, REFUSED_MESSAGE_ERRORS)
    )
