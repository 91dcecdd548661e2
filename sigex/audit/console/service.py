"""What the auditor's console can answer, without HTTP: each answer is logged before it is given.

:class:`AuditConsole` checks that the principal is an auditor, writes the
consultation to the access log (:mod:`sigex.audit.console.consultations`) and
only then reads what was asked. Stores are per thread (the web server answers
in a pool of threads; a store is not thread-safe).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sigex.audit._keys import Ed25519PrivateKey
from sigex.audit.checkpoint import Checkpoint, TrustedKeys
from sigex.audit.console.consultations import (
    Consultation,
    ConsultationLog,
    ConsultationNotLogged,
    ThreadStores,
)
from sigex.audit.console.health import LogHealth, Verification, log_health, save_verification
from sigex.audit.console.overview import Overview, build_overview
from sigex.audit.console.usage import UsageReports, UsageThresholds, build_usage
from sigex.audit.errors import AccessLogError
from sigex.audit.report import (
    AccessReport,
    ReportDocument,
    build_report,
    citizen_document,
    report_context,
)
from sigex.audit.report_texts import Language
from sigex.audit.store import AccessLogStore, RecordFilter, StoredRecord
from sigex.audit.verify import verify_store
from sigex.audit.witness_check import check_witnesses
from sigex.audit.witness_policy import Witnessing, WitnessVerdict
from sigex.clock import Clock, SystemClock
from sigex.errors import InvalidIdentifier
from sigex.exchange.access_record import EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.identity.directory import PartyEntry
from sigex.logs import get_logger
from sigex.policies.compiled import CompiledPolicy

AUDITOR_KIND = "auditor"
PAGE_SIZE = 50
#: how many of the newest checkpoints a record page searches for a witnessed one
WITNESSED_SEARCHED = 64
#: At most this many rows in one CSV export (the page says when there were more).
EXPORT_LIMIT = 100_000
DEFAULT_PERIOD_DAYS = 30
#: The zone for local times when no policy is loaded (the policy names its own).
DEFAULT_ZONE = ZoneInfo("Europe/Amsterdam")
_log = get_logger(__name__)
T = TypeVar("T")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
#: The search form's text filters, in the order the form shows them.
TEXT_FILTERS = ("party", "sender", "recipient", "signal", "purpose", "legal_basis")


class ConsoleError(AccessLogError):
    """A console request that cannot be answered; the message never holds personal data."""

    status = 400


class NotAnAuditor(ConsoleError):
    """The certificate is not an auditor's (or of a revoked key generation)."""

    status = 403


class BadConsoleInput(ConsoleError):
    """A form field that is not what it should be (the field is named, the value never)."""


class RecordNotFound(ConsoleError):
    status = 404


class LogUnavailable(ConsoleError):
    """The database could not be read (it restarted, say); the next question reconnects."""

    status = 503


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The search form as typed: every field optional, at least one filter required."""

    bsn: str = ""
    subject: str = ""
    party: str = ""
    sender: str = ""
    recipient: str = ""
    signal: str = ""
    purpose: str = ""
    legal_basis: str = ""
    outcome: str = ""
    kind: str = ""
    since: str = ""
    until: str = ""
    after: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SearchForm:
        known = {name: str(fields.get(name, "")).strip() for name in cls.__dataclass_fields__}
        return cls(**known)

    def used(self) -> tuple[str, ...]:
        """The names of the filters given (for the consultation record; never the values)."""
        names = ("bsn", "subject", *TEXT_FILTERS, "outcome", "kind", "since", "until")
        return tuple(name for name in names if getattr(self, name))

    def carried(self, subject: str | None) -> dict[str, str]:
        """The filters to carry to the next page or the export: the BSN as its pseudonym."""
        values = {
            name: getattr(self, name)
            for name in (*TEXT_FILTERS, "outcome", "kind", "since", "until")
            if getattr(self, name)
        }
        if subject:
            values["subject"] = subject
        return values


@dataclass(frozen=True, slots=True)
class SearchResult:
    form: SearchForm
    subject: str | None
    records: tuple[StoredRecord, ...]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class RecordView:
    stored: StoredRecord
    entry: str
    checkpoint: Checkpoint | None
    proof: tuple[str, ...]
    related: tuple[StoredRecord, ...]
    #: what the witness policy makes of the checkpoint's cosignatures (None: no policy)
    witnesses: WitnessVerdict | None = None

    def proof_document(self) -> dict[str, Any] | None:
        """What the browser checks: the entry, the path and the signed checkpoint."""
        if self.checkpoint is None:
            return None
        return {
            "leaf_index": self.stored.leaf_index,
            "entry": self.entry,
            "path": list(self.proof),
            "checkpoint": self.checkpoint.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ArticleFifteen:
    report: AccessReport
    document: ReportDocument


@dataclass
class AuditConsole:
    """The console's answers for one access log; see the module's docstring."""

    open_store: Callable[[], AccessLogStore]
    party_kinds: Mapping[str, str]
    party_names: Mapping[str, str]
    pseudonymiser: SubjectPseudonymiser | None
    policy: CompiledPolicy | None
    consultations: ConsultationLog
    clock: Clock
    verification_file: Path
    trusted_keys: TrustedKeys | None = None
    #: the witness policy and the directory to judge cosignatures by (None: not shown)
    witnessing: Witnessing | None = None
    _stores: ThreadStores = field(init=False, repr=False)
    _local_verification: Verification | None = field(default=None, repr=False)

    # -- who asks --------------------------------------------------------------------------

    def authorise(self, principal: str | None) -> str:
        """The auditor's party code; anyone else is refused (and a known party's try logged)."""
        if principal is not None and self.party_kinds.get(principal) == AUDITOR_KIND:
            return principal
        if principal is not None and principal in self.party_kinds:
            self._consult(Consultation(principal, "refused", refused=True))
        raise NotAnAuditor("the console is for auditors: this certificate is not an auditor's")

    def __post_init__(self) -> None:
        self._stores = ThreadStores(self.open_store)

    def store(self) -> AccessLogStore:
        return self._stores.get()

    def answering(self, question: Callable[..., T], *args: Any) -> T:
        """``question(*args)``; a failure other than a refusal drops this thread's database
        connection, so that the next question opens a new one (a database that restarted)."""
        try:
            return question(*args)
        except (ConsoleError, ConsultationNotLogged):
            raise
        except Exception as error:  # the database went away, or a fault: never a traceback
            self._stores.drop()
            _log.error("console_unanswered", error=type(error).__name__)
            raise LogUnavailable(
                "the access log cannot be read right now; nothing is shown (try again)"
            ) from None

    def _consult(self, consultation: Consultation) -> None:
        self.consultations.write_reconnecting(self._stores, consultation)

    # -- the views -------------------------------------------------------------------------

    def period(self, since: str = "", until: str = "") -> tuple[datetime, datetime]:
        """A period of whole days (UTC) from the form, by default the last 30 days."""
        today = self.clock.now().astimezone(UTC).date()
        first = _date(since, "since") or today - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        last = _date(until, "until") or today
        if last < first:
            raise BadConsoleInput("period: 'until' is before 'since'")
        if (last - first).days > 366:
            raise BadConsoleInput("period: at most a year at a time")
        return _midnight(first), _midnight(last + timedelta(days=1))

    def overview(self, auditor: str, since: str = "", until: str = "") -> Overview:
        start, end = self.period(since, until)
        self._consult(Consultation(auditor, "overview", ("since", "until")))
        today = self.clock.now().date()
        return build_overview(self.store(), start, end, self.policy, today)

    def search(self, auditor: str, form: SearchForm) -> SearchResult:
        record_filter, subject = self._filter(form)
        after = _int(form.after, "after") if form.after else None
        self._consult(Consultation(auditor, "search", form.used(), subject))
        page = self.store().query(record_filter, limit=PAGE_SIZE, after=after)
        return SearchResult(form, subject, page.records, page.next_after)

    def export(self, auditor: str, form: SearchForm) -> Iterator[StoredRecord]:
        record_filter, subject = self._filter(form)
        self._consult(Consultation(auditor, "export", form.used(), subject))
        for number, stored in enumerate(self.store().query_all(record_filter)):
            if number >= EXPORT_LIMIT:
                return
            yield stored

    def record(self, auditor: str, leaf_index: int) -> RecordView:
        store = self.store()
        page = store.query(RecordFilter(), limit=1, after=leaf_index - 1)
        if leaf_index < 0 or not page.records or page.records[0].leaf_index != leaf_index:
            self._consult(Consultation(auditor, "record", ("leaf_index",)))
            raise RecordNotFound(f"record {leaf_index}: not in the log")
        stored = page.records[0]
        self._consult(
            Consultation(
                auditor,
                "record",
                ("leaf_index",),
                stored.record.subject,
                message_id=stored.record.message_id,
            )
        )
        checkpoint, verdict = self._covering_checkpoint(store, leaf_index)
        proof = (
            tuple(p.hex() for p in store.inclusion_proof(leaf_index, checkpoint.tree_size))
            if checkpoint is not None
            else ()
        )
        related = store.query(RecordFilter(trace_id=stored.record.trace_id), limit=PAGE_SIZE)
        return RecordView(
            stored,
            store.entry(leaf_index).decode("utf-8"),
            checkpoint,
            proof,
            related.records,
            verdict,
        )

    def _covering_checkpoint(
        self, store: AccessLogStore, leaf_index: int
    ) -> tuple[Checkpoint | None, WitnessVerdict | None]:
        """The checkpoint a record's proof leads to: the latest one the witness policy's
        quorum co-signed that covers the record, else the latest that covers it."""
        latest = store.latest_checkpoint()
        if latest is None or leaf_index >= latest.tree_size:
            return None, None
        if self.witnessing is None:
            return latest, None
        for candidate in reversed(store.recent_checkpoints(WITNESSED_SEARCHED)):
            if leaf_index >= candidate.tree_size:
                break
            verdict = self.witnessing.verdict(candidate, store.cosignatures(candidate))
            if verdict.met:
                return candidate, verdict
        return latest, self.witnessing.verdict(latest, store.cosignatures(latest))

    def health(self, auditor: str) -> LogHealth:
        self._consult(Consultation(auditor, "health"))
        health = log_health(self.store(), self.trusted_keys, self.verification_file)
        if self.witnessing is not None and self.trusted_keys is not None:
            report = check_witnesses(self.store(), self.witnessing, self.trusted_keys)
            health = replace(health, witnesses=report)
        remembered = self._local_verification
        kept = health.last_verification
        if remembered is not None and (kept is None or kept.at < remembered.at):
            return replace(health, last_verification=remembered)
        return health

    def verify_now(self, auditor: str) -> Verification:
        """Read the whole log through (``sigex audit verify``) and keep the outcome."""
        self._consult(Consultation(auditor, "verify"))
        report = verify_store(self.store(), public_key=self.trusted_keys)
        verification = Verification.of(report, self.clock.now())
        self._local_verification = verification
        try:
            save_verification(self.verification_file, verification)
        except OSError as error:  # a read-only state folder: this process still remembers it
            _log.warning("console_verification_not_kept", error=error.strerror)
        return verification

    def usage(
        self, auditor: str, thresholds: UsageThresholds, since: str = "", until: str = ""
    ) -> UsageReports:
        start, end = self.period(since, until)
        self._consult(Consultation(auditor, "usage", ("since", "until")))
        zone = self.policy.zone if self.policy is not None else DEFAULT_ZONE
        return build_usage(self.store(), start, end, thresholds, zone)

    def article_fifteen(self, auditor: str, bsn: str, language: Language) -> ArticleFifteen:
        subject = self._pseudonym(bsn)
        self._consult(Consultation(auditor, "report", ("bsn",), subject))
        store = self.store()
        records = list(store.query_all(RecordFilter(subject=subject)))
        latest = store.latest_checkpoint()
        report = build_report(records, self.clock.now(), latest.tree_size if latest else None)
        context = report_context(self.party_names, self.policy)
        return ArticleFifteen(report, citizen_document(report, language, context))

    # -- forms -----------------------------------------------------------------------------

    def _pseudonym(self, bsn: str) -> str:
        if self.pseudonymiser is None:
            raise BadConsoleInput("search by BSN: this console has no pseudonym key")
        try:
            return self.pseudonymiser.pseudonym(bsn)
        except InvalidIdentifier:
            raise BadConsoleInput("BSN: not a valid citizen service number (elfproef)") from None

    def _filter(self, form: SearchForm) -> tuple[RecordFilter, str | None]:
        subject: str | None = None
        if form.bsn:
            subject = self._pseudonym(form.bsn)
        elif form.subject:
            if not _PSEUDONYM.fullmatch(form.subject):
                raise BadConsoleInput("subject: not a pseudonym (64 hexadecimal characters)")
            subject = form.subject
        values: dict[str, Any] = {}
        for name in TEXT_FILTERS:
            value = getattr(form, name)
            if value:
                if not _CODE.fullmatch(value):
                    raise BadConsoleInput(f"{name.replace('_', ' ')}: not a code")
                values[name] = value
        try:
            if form.outcome:
                values["outcome"] = Outcome(form.outcome.upper())
            if form.kind:
                values["kind"] = EventKind(form.kind.upper())
        except ValueError:
            raise BadConsoleInput("outcome or kind: not one of the listed values") from None
        since, until = _date(form.since, "since"), _date(form.until, "until")
        if since is not None:
            values["since"] = _midnight(since)
        if until is not None:
            values["until"] = _midnight(until + timedelta(days=1))
        record_filter = RecordFilter(subject=subject, **values)
        if record_filter.is_empty():
            raise BadConsoleInput("search: give at least one filter")
        return record_filter, subject


def _date(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadConsoleInput(f"{name}: not a date (YYYY-MM-DD)") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _int(text: str, name: str) -> int:
    if not text.isdigit():
        raise BadConsoleInput(f"{name}: not a number")
    return int(text)


def build_console(
    location: str,
    parties: Sequence[PartyEntry],
    pseudonymiser: SubjectPseudonymiser | None,
    policy: CompiledPolicy | None,
    signing_key: Ed25519PrivateKey | None,
    trusted_keys: TrustedKeys | None,
    verification_file: Path,
    clock: Clock | None = None,
    witnessing: Witnessing | None = None,
) -> AuditConsole:
    """A console over the log at ``location`` (a SQLite path or a PostgreSQL DSN)."""
    clock = clock or SystemClock()
    return AuditConsole(
        open_store=lambda: AccessLogStore.open(location),
        party_kinds={p.code: p.kind for p in parties},
        party_names={p.code: p.name for p in parties},
        pseudonymiser=pseudonymiser,
        policy=policy,
        consultations=ConsultationLog(clock, signing_key),
        clock=clock,
        verification_file=verification_file,
        trusted_keys=trusted_keys,
        witnessing=witnessing,
    )
