"""Every question an auditor asks the console is written to the access log before it is answered.

A consultation is an :class:`~sigex.exchange.access_record.AccessRecord` of kind
``CONSULTED``: the one who asked is the sender, the view is the signal
(``console.search``, ``console.record`` ..., and ``api.records``, ``api.proof``
for the JSON API), the purpose is ``LOG_AUDIT``, the
reason codes name the filters used (never their values), and the subject is
the keyed pseudonym of the person looked up (``NO_SUBJECT`` when the query
named nobody). The console appends it to the store itself, in the request,
and signs a checkpoint over it when it holds the audit key: if the record
cannot be written the question is not answered (:class:`ConsultationNotLogged`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.errors import AccessLogError
from sigex.audit.store import AccessLogStore
from sigex.clock import Clock
from sigex.exchange.access_record import NO_SUBJECT, AccessRecord, EventKind, Outcome
from sigex.logs import get_logger

CONSULTATION_PURPOSE = "LOG_AUDIT"
CONSULTATION_POLICY = "console-v1"
_log = get_logger(__name__)


class ConsultationNotLogged(AccessLogError):
    """The console could not write the record of a question, so it does not answer it."""


@dataclass(frozen=True, slots=True)
class Consultation:
    """What one auditor asked: the view, the filters by name, and whom it was about."""

    auditor: str
    view: str
    filters: tuple[str, ...] = ()
    subject: str | None = None
    message_id: str | None = None
    refused: bool = False
    #: where the question came in: the console's pages, or the JSON API (``api``)
    channel: str = "console"


class ThreadStores:
    """One store per thread (a store is not thread-safe), reopened after its connection failed.

    The console and the JSON API answer in a pool of threads; a PostgreSQL that restarted
    leaves each thread's connection dead, so a failed one is dropped (:meth:`drop`) and the
    thread's next :meth:`get` opens a new one.
    """

    def __init__(self, open_store: Callable[[], AccessLogStore]) -> None:
        self._open_store = open_store
        self._local = threading.local()

    def get(self) -> AccessLogStore:
        store: AccessLogStore | None = getattr(self._local, "store", None)
        if store is None:
            store = self._open_store()
            self._local.store = store
        return store

    def drop(self) -> None:
        store: AccessLogStore | None = getattr(self._local, "store", None)
        self._local.store = None
        if store is not None:
            try:
                store.close()
            except Exception as error:  # a connection already gone: nothing to close
                _log.info("access_log_store_close_failed", error=type(error).__name__)


class ConsultationLog:
    """Writes consultations to the access log (and, with the audit key, a checkpoint over them)."""

    def __init__(self, clock: Clock, signing_key: Ed25519PrivateKey | None) -> None:
        self._clock = clock
        self._signing_key = signing_key

    def record_of(self, consultation: Consultation) -> AccessRecord:
        operation = secrets.token_hex(8)
        return AccessRecord(
            trace_id=secrets.token_hex(16),
            operation_id=operation,
            occurred_at=self._clock.now(),
            kind=EventKind.CONSULTED,
            sender=consultation.auditor,
            recipient=None,
            signal=f"{consultation.channel}.{consultation.view}",
            purpose=CONSULTATION_PURPOSE,
            legal_basis=None,
            agreement_id=None,
            agreement_version=None,
            policy_version=CONSULTATION_POLICY,
            outcome=Outcome.DENY if consultation.refused else Outcome.PERMIT,
            reason_codes=tuple(_filter_codes(consultation.filters)),
            disclosed_fields=(),
            message_id=consultation.message_id or f"consultation-{operation}",
            subject=consultation.subject or NO_SUBJECT,
        )

    def write_reconnecting(self, stores: ThreadStores, consultation: Consultation) -> int:
        """:meth:`write`; when that fails, once more on a new connection (a database that
        restarted no longer knows the old one)."""
        try:
            return self.write(stores.get(), consultation)
        except ConsultationNotLogged:
            stores.drop()
            return self.write(stores.get(), consultation)

    def write(self, store: AccessLogStore, consultation: Consultation) -> int:
        """Append the consultation; return its leaf index. Raises if it cannot be written."""
        record = self.record_of(consultation)
        try:
            result = store.append([record])
            if self._signing_key is not None:
                store.checkpoint(self._signing_key, self._clock)
        except Exception as error:  # the store's own errors and a database driver's alike
            _log.error(
                "console_consultation_not_logged",
                view=consultation.view,
                error=type(error).__name__,
            )
            raise ConsultationNotLogged(
                "the console could not write this question to the access log, so it is not answered"
            ) from None
        _log.info(
            "console_consultation",
            auditor=consultation.auditor,
            view=consultation.view,
            filters=list(consultation.filters),
            refused=consultation.refused,
        )
        return result.tree_size - 1


def _filter_codes(names: Iterable[str]) -> list[str]:
    return sorted({f"filter.{name}" for name in names})
