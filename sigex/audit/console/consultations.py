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
from collections.abc import Iterable
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
