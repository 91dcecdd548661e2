"""The compiled policy: the vocabulary, the agreements and the indexes decide() looks up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sigex.policies.decision import Decision
from sigex.policies.errors import PolicyError
from sigex.policies.model import (
    Agreement,
    Classification,
    Cooperation,
    LegalBasis,
    Party,
    Purpose,
    Route,
    Window,
)
from sigex.schemas.catalogue import Catalogue

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)

RouteKey = tuple[str, str, str, str]  # sender, signal, recipient, purpose


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def window_moments(window: Window, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The half-open UTC interval [start, end) of a window of whole days in ``zone``."""
    start = EARLIEST if window.valid_from is None else day_start(window.valid_from, zone)
    if window.valid_until is None:
        return start, LATEST
    return start, day_start(window.valid_until + timedelta(days=1), zone)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One agreement as seen from one route, with its time bounds precomputed in UTC.

    ``clear_start``..``clear_end`` is where the agreement, its legal basis and its
    cooperation are all in force (empty when the basis is not usable at all);
    inside it, with acceptable classifications, the answer is ``allowed``.
    """

    agreement: Agreement
    start: datetime
    end: datetime
    basis_start: datetime
    basis_end: datetime
    cooperation_start: datetime
    cooperation_end: datetime
    clear_start: datetime
    clear_end: datetime
    classifications: frozenset[str]
    allowed: Decision
    #: Prepared refusals by (outside agreement, outside basis, outside cooperation).
    refusals: Mapping[tuple[bool, bool, bool], Decision] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Everything the policy files say, checked and indexed; immutable."""

    version: str
    content_hash: str
    timezone: str
    parties: Mapping[str, Party]
    classifications: Mapping[str, Classification]
    legal_bases: Mapping[str, LegalBasis]
    purposes: Mapping[str, Purpose]
    cooperations: Mapping[str, Cooperation]
    agreements: tuple[Agreement, ...]
    catalogue: Catalogue = field(repr=False, compare=False)
    route_index: Mapping[RouteKey, tuple[RouteEntry, ...]] = field(repr=False, compare=False)
    by_sender_signal_purpose: Mapping[tuple[str, str, str], tuple[Agreement, ...]] = field(
        repr=False, compare=False
    )
    #: For explaining refusals: ("sender", signal, recipient, purpose) -> allowed senders,
    #: ("recipient", sender, signal, purpose) -> recipients, ("purpose", sender, signal,
    #: recipient) -> purposes, ("signal", signal, "", "") -> every party in an agreement for it.
    alternatives: Mapping[tuple[str, str, str, str], frozenset[str]] = field(
        repr=False, compare=False
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_day(self, at: datetime) -> date:
        """The calendar day of ``at`` in the policy's time zone."""
        return at.astimezone(self.zone).date()

    def agreement(self, agreement_id: str, version: int | None = None) -> Agreement:
        """The agreement with this id (its highest version unless one is given)."""
        matches = [a for a in self.agreements if a.id == agreement_id]
        if version is not None:
            matches = [a for a in matches if a.version == version]
        if not matches:
            raise KeyError(agreement_id)
        return max(matches, key=lambda a: a.version)

    def agreements_for_sender(self, sender: str) -> tuple[Agreement, ...]:
        """Every agreement that lets ``sender`` send something (at any time)."""
        return tuple(a for a in self.agreements if sender in a.possible_senders)

    def agreements_for_recipient(self, recipient: str) -> tuple[Agreement, ...]:
        """Every agreement that can deliver something to ``recipient`` (at any time)."""
        return tuple(a for a in self.agreements if recipient in a.possible_recipients)

    def routes(self) -> tuple[Route, ...]:
        """Every (sender, signal, recipient, purpose) some agreement can allow, sorted.

        Topics and Kafka ACLs are compiled from these: a route lets its sender
        write ``sigex.<signal>.in`` and its recipient read ``sigex.<signal>.out.<recipient>``.
        """
        routes = {
            Route(sender, a.signal, recipient, a.purpose, a.id, a.version)
            for a in self.agreements
            for sender in a.possible_senders
            for recipient in a.possible_recipients
            if sender != recipient
        }
        return tuple(
            sorted(
                routes, key=lambda r: (r.signal, r.sender, r.recipient, r.purpose, r.agreement_id)
            )
        )

    def longest_retention_days(self, party: str) -> int:
        """The longest retention of any data sealed to ``party``'s encryption keys, in days.

        A party's deliveries are sealed to it, so its keys must outlive the
        longest retention of an agreement that can deliver to it. sigex's
        own services (the gateway opens every submission, the audit service
        receives events about every agreement) take the longest of all
        agreements. A party no agreement delivers to needs none: 0.
        """
        known = self.parties.get(party)
        if known is not None and known.kind == "service":
            relevant = self.agreements
        else:
            relevant = self.agreements_for_recipient(party)
        return max((a.retention_days for a in relevant), default=0)

    def parties_of_kind(self, kind: str) -> frozenset[str]:
        return frozenset(code for code, party in self.parties.items() if party.kind == kind)

    def candidate_recipients(
        self, sender: str, signal: str, purpose: str, record: Mapping[str, object]
    ) -> tuple[str, ...]:
        """The parties this record from ``sender`` may be meant for, sorted, without duplicates.

        Fixed recipients are always candidates; a rule recipient is the party
        whose code is in the named field, if that field holds the code of a
        party of the rule's kind (a null or unknown value yields nothing; the
        caller audits that). Dates are not checked here: decide() does that
        for each candidate.
        """
        found: set[str] = set()
        for agreement in self.by_sender_signal_purpose.get((sender, signal, purpose), ()):
            if not agreement.sender_matches(sender, record):
                continue
            recipient = self._resolve_recipient(agreement, record)
            if recipient is not None and recipient != sender:
                found.add(recipient)
        return tuple(sorted(found))

    def candidate_deliveries(
        self, sender: str, signal: str, record: Mapping[str, object]
    ) -> tuple[tuple[str, str], ...]:
        """Every (recipient, purpose) pair for this record from ``sender``, over all purposes."""
        found: set[tuple[str, str]] = set()
        for agreement in self.agreements:
            if agreement.signal != signal or sender not in agreement.possible_senders:
                continue
            if not agreement.sender_matches(sender, record):
                continue
            recipient = self._resolve_recipient(agreement, record)
            if recipient is not None and recipient != sender:
                found.add((recipient, agreement.purpose))
        return tuple(sorted(found))

    def sender_fields_not_naming(
        self, sender: str, signal: str, purpose: str, record: Mapping[str, object]
    ) -> tuple[str, ...]:
        """The fields that should name ``sender`` (an agreement's sender rule) but name another."""
        return tuple(
            sorted(
                {
                    agreement.sender_field
                    for agreement in self.by_sender_signal_purpose.get(
                        (sender, signal, purpose), ()
                    )
                    if agreement.sender_field is not None
                    and not agreement.sender_matches(sender, record)
                }
            )
        )

    def _resolve_recipient(self, agreement: Agreement, record: Mapping[str, object]) -> str | None:
        rule = agreement.recipient_rule
        if rule is None:
            return agreement.recipient
        value = record.get(rule.field)
        if isinstance(value, str) and value in agreement.possible_recipients:
            return value
        return None


def parse_moment(text: str, compiled: CompiledPolicy, name: str = "at") -> datetime:
    """A date means the start of that day in the policy's time zone; a naive time is local too.

    ``name`` is what the caller calls the value (``--at`` on the command line), for the error.
    """
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=compiled.zone)
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise PolicyError(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 moment") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=compiled.zone)
