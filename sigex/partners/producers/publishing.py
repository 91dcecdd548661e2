"""A reference producer: a finder streamed into the Publisher, batch by batch, with a report.

Memory stays bounded: the finder yields records one at a time and at most one
batch is held. Each batch is published once per purpose; an optional
``already_published`` filter lets a producer skip what it sent in an earlier
run (the demo keeps such a ledger).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sigex.partners.producers.stamps import SignalRecord
from sigex.producers.publisher import Publisher

Batch = list[SignalRecord]


@dataclass
class PublicationReport:
    """What one reference producer published and what the policy refused, per purpose."""

    signal: str
    sender: str
    found: int = 0
    published: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    example_subjects: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for purpose in sorted(set(self.published) | set(self.refused)):
            reasons = ", ".join(
                f"{code} x{n}" for code, n in sorted(self.reasons.get(purpose, Counter()).items())
            )
            out.append(
                f"{self.sender} {self.signal} for {purpose}: {self.published[purpose]:,} "
                f"published, {self.refused[purpose]:,} refused"
                + (f" ({reasons})" if reasons else "")
            )
        return out


def batches(records: Iterable[SignalRecord], size: int) -> Iterator[Batch]:
    batch: Batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def publish_findings(
    publisher: Publisher,
    signal: str,
    records: Iterable[SignalRecord],
    purposes: Sequence[str],
    *,
    batch_size: int = 256,
    already_published: Callable[[Batch, str], Batch] | None = None,
    on_published: Callable[[Batch, str], None] | None = None,
    progress: Callable[[PublicationReport], None] | None = None,
) -> PublicationReport:
    """Publish every record once for each purpose; returns the counts and refusal reasons."""
    report = PublicationReport(signal=signal, sender=publisher.party)
    for batch in batches(records, batch_size):
        report.found += len(batch)
        for purpose in purposes:
            todo = already_published(batch, purpose) if already_published else batch
            if not todo:
                continue
            result = publisher.publish(signal, purpose, todo)
            report.published[purpose] += len(result.published)
            report.refused[purpose] += len(result.refused)
            reasons = report.reasons.setdefault(purpose, Counter())
            for refusal in result.refused:
                reasons.update(refusal.reason_codes)
            if len(report.example_subjects) < 3:
                for done in result.published:
                    bsn = todo[done.index].get("bsn")
                    if isinstance(bsn, str):
                        report.example_subjects.append(bsn)
                        break
            if on_published is not None:
                on_published(todo, purpose)
        if progress is not None:
            progress(report)
    return report
