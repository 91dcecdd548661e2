"""Usage reports in the manner of Suwinet's usage monitoring, each with its own threshold.

* **Many signals about one person**: a recipient that received at least
  ``per_person`` disclosures about one person in the period.
* **Disclosures at unusual hours**: disclosures outside ``working_hours``
  (local time of the policy's zone) or on a weekend, per recipient and day, at
  least ``unusual_minimum`` of them.
* **Refusal spikes**: a sender refused at least ``refusals_per_day`` times on
  one day.
* **First use of a purpose**: a party that sent or received under a purpose for
  the first time in the log within the period.

Each is one grouped SQL query over the period (``occurred_at`` is indexed);
only the unusual-hours report is finished in Python, over hourly counts, to
turn UTC into local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sigex.audit.console.overview import DISCLOSED, REFUSED, kinds_clause
from sigex.audit.store import AccessLogStore
from sigex.exchange.access_record import format_time

ROWS = 100


@dataclass(frozen=True, slots=True)
class UsageThresholds:
    """What counts as worth a look; every number is the auditor's to set."""

    per_person: int = 5
    working_hours: tuple[int, int] = (7, 19)
    weekends_unusual: bool = True
    unusual_minimum: int = 1
    refusals_per_day: int = 10


@dataclass(frozen=True, slots=True)
class PersonLoad:
    recipient: str
    subject: str
    disclosures: int
    first: str
    last: str


@dataclass(frozen=True, slots=True)
class UnusualHours:
    recipient: str
    sender: str
    day: str
    disclosures: int
    hours: str


@dataclass(frozen=True, slots=True)
class RefusalSpike:
    sender: str
    day: str
    refusals: int


@dataclass(frozen=True, slots=True)
class FirstPurpose:
    party: str
    role: str  # "sender" or "recipient"
    purpose: str
    first: str


@dataclass(frozen=True, slots=True)
class UsageReports:
    since: datetime
    until: datetime
    thresholds: UsageThresholds
    many_about_one: tuple[PersonLoad, ...]
    unusual_hours: tuple[UnusualHours, ...]
    refusal_spikes: tuple[RefusalSpike, ...]
    first_purposes: tuple[FirstPurpose, ...]


def build_usage(
    store: AccessLogStore,
    since: datetime,
    until: datetime,
    thresholds: UsageThresholds,
    zone: ZoneInfo,
) -> UsageReports:
    period = [format_time(since), format_time(until)]
    return UsageReports(
        since,
        until,
        thresholds,
        _many_about_one(store, period, thresholds.per_person),
        _unusual_hours(store, period, thresholds, zone),
        _refusal_spikes(store, period, thresholds.refusals_per_day),
        _first_purposes(store, period),
    )


def _many_about_one(
    store: AccessLogStore, period: list[str], threshold: int
) -> tuple[PersonLoad, ...]:
    rows = store.backend.query(
        "SELECT recipient, subject, COUNT(*), MIN(occurred_at), MAX(occurred_at) "  # noqa: S608
        f"FROM access_records WHERE occurred_at >= ? AND occurred_at < ? AND "
        f"{kinds_clause(DISCLOSED)} GROUP BY recipient, subject HAVING COUNT(*) >= ? "
        "ORDER BY COUNT(*) DESC, recipient, subject LIMIT ?",
        [*period, *DISCLOSED, max(threshold, 1), ROWS],
    )
    return tuple(
        PersonLoad(str(r[0]), str(r[1]), int(r[2]), _minute(r[3]), _minute(r[4])) for r in rows
    )


def _unusual_hours(
    store: AccessLogStore, period: list[str], thresholds: UsageThresholds, zone: ZoneInfo
) -> tuple[UnusualHours, ...]:
    rows = store.backend.query(
        "SELECT substr(occurred_at, 1, 13), recipient, sender, COUNT(*) "  # noqa: S608
        f"FROM access_records WHERE occurred_at >= ? AND occurred_at < ? AND "
        f"{kinds_clause(DISCLOSED)} GROUP BY substr(occurred_at, 1, 13), recipient, sender",
        [*period, *DISCLOSED],
    )
    start, end = thresholds.working_hours
    found: dict[tuple[str, str, str], tuple[int, set[int]]] = {}
    for hour_text, recipient, sender, count in rows:
        local = datetime.fromisoformat(f"{hour_text}:00:00").replace(tzinfo=UTC).astimezone(zone)
        weekend = thresholds.weekends_unusual and local.weekday() >= 5
        if start <= local.hour < end and not weekend:
            continue
        key = (str(recipient), str(sender), local.date().isoformat())
        total, hours = found.get(key, (0, set()))
        found[key] = (total + int(count), hours | {local.hour})
    items = [
        UnusualHours(r, s, d, total, ", ".join(f"{h:02d}h" for h in sorted(hours)))
        for (r, s, d), (total, hours) in found.items()
        if total >= max(thresholds.unusual_minimum, 1)
    ]
    items.sort(key=lambda u: (-u.disclosures, u.day, u.recipient))
    return tuple(items[:ROWS])


def _refusal_spikes(
    store: AccessLogStore, period: list[str], threshold: int
) -> tuple[RefusalSpike, ...]:
    rows = store.backend.query(
        "SELECT sender, substr(occurred_at, 1, 10), COUNT(*) FROM access_records "  # noqa: S608
        f"WHERE occurred_at >= ? AND occurred_at < ? AND {kinds_clause(REFUSED)} "
        "GROUP BY sender, substr(occurred_at, 1, 10) HAVING COUNT(*) >= ? "
        "ORDER BY COUNT(*) DESC, sender LIMIT ?",
        [*period, *REFUSED, max(threshold, 1), ROWS],
    )
    return tuple(RefusalSpike(str(r[0]), str(r[1]), int(r[2])) for r in rows)


def _first_purposes(store: AccessLogStore, period: list[str]) -> tuple[FirstPurpose, ...]:
    kinds = (*DISCLOSED, *REFUSED, "PUBLISHED")
    found: list[FirstPurpose] = []
    for role in ("sender", "recipient"):  # column names from this fixed pair
        rows = store.backend.query(
            f"SELECT {role}, purpose, MIN(occurred_at) FROM access_records "  # noqa: S608
            f"WHERE {role} IS NOT NULL AND {kinds_clause(kinds)} GROUP BY {role}, purpose "
            "HAVING MIN(occurred_at) >= ? AND MIN(occurred_at) < ? ORDER BY MIN(occurred_at) "
            "LIMIT ?",
            [*kinds, *period, ROWS],
        )
        found += [FirstPurpose(str(r[0]), role, str(r[1]), _minute(r[2])) for r in rows]
    found.sort(key=lambda f: (f.first, f.party))
    return tuple(found[:ROWS])


def _minute(stored_time: object) -> str:
    """A stored UTC time as ``YYYY-MM-DD HH:MM:SS`` for a table."""
    return str(stored_time)[:19].replace("T", " ")
