"""The console's overview: disclosures and refusals per day and per party, signal, purpose, basis.

Counted in SQL by one grouped scan of the period (``occurred_at`` is indexed);
the groups (day, signal, sender, recipient, purpose, basis, kind: a few
thousand at most) are tallied per breakdown in Python. Refusal
reasons live only in the records' canonical bytes; they are read for at most
:data:`REASON_SAMPLE` refusals of the period and the page says so when it
sampled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sigex.audit.store import AccessLogStore
from sigex.exchange.access_record import EventKind, format_time
from sigex.policies.compiled import CompiledPolicy

DISCLOSED = (EventKind.DELIVERED.value,)
REFUSED = (
    EventKind.REFUSED_AT_PUBLISH.value,
    EventKind.REFUSED_FOR_RECIPIENT.value,
    EventKind.DEAD_LETTERED.value,
)
#: The columns the overview breaks down by (a fixed list: they are written into SQL).
BREAKDOWNS = ("signal", "sender", "recipient", "purpose", "legal_basis")
REASON_SAMPLE = 50_000
TOP = 15
AGREEMENT_HORIZON_DAYS = 90


@dataclass(frozen=True, slots=True)
class Tally:
    """Disclosures and refusals under one label (a day, a party, a signal ...)."""

    label: str
    disclosed: int = 0
    refused: int = 0

    @property
    def total(self) -> int:
        return self.disclosed + self.refused


@dataclass(frozen=True, slots=True)
class AgreementChange:
    agreement_id: str
    version: int
    signal: str
    senders: str
    recipient: str
    change: str  # "starts" or "ends"
    day: date


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    until: datetime
    days: tuple[Tally, ...]
    breakdowns: dict[str, tuple[Tally, ...]]
    reasons: tuple[tuple[str, int], ...]
    reasons_sampled: bool
    agreements: tuple[AgreementChange, ...] = field(default=())

    @property
    def disclosed(self) -> int:
        return sum(t.disclosed for t in self.days)

    @property
    def refused(self) -> int:
        return sum(t.refused for t in self.days)


def kinds_clause(kinds: Sequence[str]) -> str:
    return f"kind IN ({', '.join('?' for _ in kinds)})"


def _tallies(rows: Iterable[Sequence[object]]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for label, kind, count in rows:
        name = "" if label is None else str(label)
        current = tallies.get(name, Tally(name))
        if str(kind) in DISCLOSED:
            current = Tally(name, current.disclosed + int(str(count)), current.refused)
        else:
            current = Tally(name, current.disclosed, current.refused + int(str(count)))
        tallies[name] = current
    return tallies


def build_overview(
    store: AccessLogStore,
    since: datetime,
    until: datetime,
    policy: CompiledPolicy | None,
    today: date,
) -> Overview:
    """One grouped scan of the period, tallied per day and per breakdown in Python."""
    kinds = (*DISCLOSED, *REFUSED)
    columns = ", ".join(BREAKDOWNS)  # the fixed list above
    rows = store.backend.query(
        f"SELECT substr(occurred_at, 1, 10), {columns}, kind, COUNT(*) "  # noqa: S608
        f"FROM access_records WHERE occurred_at >= ? AND occurred_at < ? AND "
        f"{kinds_clause(kinds)} GROUP BY substr(occurred_at, 1, 10), {columns}, kind",
        [format_time(since), format_time(until), *kinds],
    )
    by_day = _tallies((row[0], row[-2], row[-1]) for row in rows)
    days = tuple(
        by_day.get(day.isoformat(), Tally(day.isoformat()))
        for day in _days(since.date(), until.date())
    )
    breakdowns: dict[str, tuple[Tally, ...]] = {}
    for position, column in enumerate(BREAKDOWNS, start=1):
        tallies = _tallies((row[position], row[-2], row[-1]) for row in rows)
        ranked = sorted(tallies.values(), key=lambda t: (-t.total, t.label))
        breakdowns[column] = tuple(ranked[:TOP])
    reasons, sampled = _refusal_reasons(store, since, until)
    agreements = _agreement_changes(policy, today) if policy is not None else ()
    return Overview(since, until, days, breakdowns, reasons, sampled, agreements)


def _days(first: date, last: date) -> list[date]:
    count = min((last - first).days + 1, 400)
    return [first + timedelta(days=offset) for offset in range(max(count, 0))]


def _refusal_reasons(
    store: AccessLogStore, since: datetime, until: datetime
) -> tuple[tuple[tuple[str, int], ...], bool]:
    rows = store.backend.query(
        f"SELECT entry FROM access_records WHERE occurred_at >= ? AND occurred_at < ? "  # noqa: S608
        f"AND {kinds_clause(REFUSED)} LIMIT ?",
        [format_time(since), format_time(until), *REFUSED, REASON_SAMPLE + 1],
    )
    counted: Counter[str] = Counter()
    for (entry,) in rows[:REASON_SAMPLE]:
        try:
            codes = json.loads(bytes(entry)).get("reason_codes") or []
        except (ValueError, TypeError, AttributeError):
            continue  # a damaged row; verify names it
        counted.update(str(code) for code in codes)
    return tuple(counted.most_common(TOP)), len(rows) > REASON_SAMPLE


def _agreement_changes(policy: CompiledPolicy, today: date) -> tuple[AgreementChange, ...]:
    horizon = today + timedelta(days=AGREEMENT_HORIZON_DAYS)
    changes: list[AgreementChange] = []
    for agreement in policy.agreements:
        recipient = agreement.recipient or "(by rule)"
        senders = ", ".join(sorted(agreement.sender_codes)) or (agreement.sender_kind or "")
        window = agreement.window
        for change, day in (("starts", window.valid_from), ("ends", window.valid_until)):
            if day is not None and today <= day <= horizon:
                changes.append(
                    AgreementChange(
                        agreement.id,
                        agreement.version,
                        agreement.signal,
                        senders,
                        recipient,
                        change,
                        day,
                    )
                )
    return tuple(sorted(changes, key=lambda c: (c.day, c.agreement_id)))
