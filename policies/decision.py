"""The question to the policy and its answer: DecisionRequest, Decision, Reason.

``ReasonCode`` lives in :mod:`sigex.reasons` with every other code sigex gives.
"""

from __future__ import annotations

from dataclasses import dataclass


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
class Decision:
    """The answer. A refusal discloses nothing: no fields and no retention."""

    allowed: bool
    agreement_id: str | None
    agreement_version: int | None
    legal_basis: str | None
    purpose: str
    fields: frozenset[str]
    retention_days: int | None
    reasons: tuple[Reason, ...]
    policy_version: str
    policy_hash: str

    def __post_init__(self) -> None:
        if not self.reasons:
            raise ValueError("a decision always has at least one reason")
        if self.allowed:
            if self.agreement_id is None or self.retention_days is None:
                raise ValueError("an allowed decision names its agreement and retention")
        elif self.fields or self.retention_days is not None:
            raise ValueError("a refused decision discloses no fields")

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)
