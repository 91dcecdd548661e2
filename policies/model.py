"""The vocabulary and the agreements, as typed, frozen records built by the compiler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class BasisStatus(StrEnum):
    """Where a legal basis stands; only in_force and experiment can carry a delivery."""

    IN_FORCE = "in_force"
    EXPERIMENT = "experiment"
    UNDER_REVIEW = "under_review"
    REPEALED = "repealed"

    @property
    def usable(self) -> bool:
        return self in (BasisStatus.IN_FORCE, BasisStatus.EXPERIMENT)


@dataclass(frozen=True, slots=True)
class Window:
    """Calendar days from ``valid_from`` to ``valid_until``, both inclusive; None is open."""

    valid_from: date | None
    valid_until: date | None

    def __post_init__(self) -> None:
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until < self.valid_from
        ):
            raise ValueError("a window cannot end before it starts")

    def contains(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until

    def overlaps(self, other: Window) -> bool:
        starts_before_other_ends = (
            self.valid_from is None
            or other.valid_until is None
            or self.valid_from <= other.valid_until
        )
        other_starts_before_this_ends = (
            other.valid_from is None
            or self.valid_until is None
            or other.valid_from <= self.valid_until
        )
        return starts_before_other_ends and other_starts_before_this_ends

    def describe(self) -> str:
        start = f"from {self.valid_from.isoformat()}" if self.valid_from else "from any day"
        end = f"until {self.valid_until.isoformat()}" if self.valid_until else "with no end date"
        return f"{start} {end}"


@dataclass(frozen=True, slots=True)
class Party:
    code: str
    name: str
    oin: str
    kind: str


@dataclass(frozen=True, slots=True)
class Classification:
    code: str
    description: str
    needs_basis_permission: bool


@dataclass(frozen=True, slots=True)
class LegalBasis:
    code: str
    citation: str
    summary: str
    status: BasisStatus
    window: Window
    requires_cooperation: bool
    permits: frozenset[str]
    note: str


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    description: str
    legal_bases: frozenset[str]
    classifications: frozenset[str]


@dataclass(frozen=True, slots=True)
class Cooperation:
    """A declared cooperation; ``partners`` already includes the parties of ``partner_kinds``."""

    code: str
    name: str
    legal_basis: str
    partners: frozenset[str]
    window: Window


@dataclass(frozen=True, slots=True)
class RecipientRule:
    """The recipient is the party whose code is in ``field`` of the record, of kind ``kind``."""

    field: str
    kind: str

    def describe(self) -> str:
        return f"the {self.kind} in field {self.field!r}"


@dataclass(frozen=True, slots=True)
class Agreement:
    """One exchange agreement: who may send which signal to whom, why, on which basis, until when.

    Exactly one of ``recipient`` (a fixed party) and ``recipient_rule`` is set.
    ``possible_senders`` and ``possible_recipients`` are the parties it can ever
    apply to (a rule recipient of kind municipality: every municipality); topics
    and Kafka ACLs are compiled from them.
    """

    id: str
    version: int
    signal: str
    sender_codes: frozenset[str]
    sender_kind: str | None
    recipient: str | None
    recipient_rule: RecipientRule | None
    purpose: str
    legal_basis: str
    cooperation: str | None
    fields: frozenset[str]
    retention_days: int
    window: Window
    note: str
    source: str
    line: int
    possible_senders: frozenset[str]
    possible_recipients: frozenset[str]
    #: the sender must be the party named in this field of the record (``None``: no such rule)
    sender_field: str | None = None

    def __post_init__(self) -> None:
        if (self.recipient is None) == (self.recipient_rule is None):
            raise ValueError("an agreement has either a fixed recipient or a recipient rule")

    def sender_matches(self, sender: str, record: Mapping[str, object]) -> bool:
        """True unless the agreement names its sender in a field that holds another value."""
        return self.sender_field is None or record.get(self.sender_field) == sender

    def describe_sender(self) -> str:
        if self.sender_field is not None:
            return f"the {self.sender_kind} in field {self.sender_field!r}"
        if self.sender_kind is not None:
            return f"any {self.sender_kind}"
        return ", ".join(sorted(self.sender_codes))

    def describe_recipient(self) -> str:
        if self.recipient_rule is not None:
            return self.recipient_rule.describe()
        return str(self.recipient)


@dataclass(frozen=True, slots=True)
class Route:
    """One (sender, signal, recipient, purpose) an agreement can allow; the input for ACLs."""

    sender: str
    signal: str
    recipient: str
    purpose: str
    agreement_id: str
    agreement_version: int
