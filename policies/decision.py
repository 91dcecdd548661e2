"""The question to the policy and its answer: DecisionRequest, Decision, Reason.

``ReasonCode`` lives in :mod:`sigex.reasons` with every other code sigex gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision came out as it did: a stable code and a sentence in plain words."""

    code: str
    text: str

    def __post_init__(self) -> None:
        if type(self.code) is not str:  # a ReasonCode becomes its plain text
            object.__setattr__(self, "code", str(self.code))


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """May ``sender`` deliver ``signal`` to ``recipient`` for ``purpose``?

    ``classifications`` are the data classifications the delivery would carry
    (for example those of the record's non-empty fields the agreement
    discloses, or those a recipient actually received); a classification the
    agreement does not carry refuses the delivery. An empty set asks only
    about the route.
    """

    sender: str
    signal: str
    recipient: str
    purpose: str
    classifications: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Allowed:
    """The delivery may go: under this agreement, with these fields, kept this long."""

    agreement_id: str
    agreement_version: int
    legal_basis: str
    purpose: str
    fields: frozenset[str]
    retention_days: int
    reasons: tuple[Reason, ...]
    policy_version: str
    policy_hash: str

    def __post_init__(self) -> None:
        _require_reasons(self.reasons)

    @property
    def allowed(self) -> Literal[True]:
        return True

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)


@dataclass(frozen=True, slots=True)
class Refused:
    """The delivery may not go. It discloses nothing: no fields and no retention.

    When the refusal was measured against one agreement (outside its window, its
    legal basis not in force, ...), that agreement is named, so that the refusal's
    access record says which agreement did not hold.
    """

    purpose: str
    reasons: tuple[Reason, ...]
    policy_version: str
    policy_hash: str
    agreement_id: str | None = None
    agreement_version: int | None = None
    legal_basis: str | None = None

    def __post_init__(self) -> None:
        _require_reasons(self.reasons)

    @property
    def allowed(self) -> Literal[False]:
        return False

    @property
    def fields(self) -> frozenset[str]:
        return frozenset()

    @property
    def retention_days(self) -> None:
        return None

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)


#: The policy's answer: either Allowed or Refused. Narrow it with isinstance().
Decision: TypeAlias = Allowed | Refused


def _require_reasons(reasons: tuple[Reason, ...]) -> None:
    if not reasons:
        raise ValueError("a decision always has at least one reason")
