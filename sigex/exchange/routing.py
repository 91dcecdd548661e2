"""Who may receive one record, and with which fields: decide() for every candidate recipient.

The publisher runs this before a record leaves (to refuse at once), the
gateway runs it again on what actually arrived (the decision that counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sigex.policies.compiled import CompiledPolicy
from sigex.policies.decide import Allowed, Decision, DecisionRequest, Reason, Refused, decide
from sigex.reasons import ReasonCode
from sigex.schemas.catalogue import SignalSpec


@dataclass(frozen=True, slots=True)
class Routing:
    """The decision for each candidate recipient; ``reasons`` explain an empty candidate list."""

    decisions: tuple[tuple[str, Decision], ...]
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> tuple[tuple[str, Allowed], ...]:
        return tuple((r, d) for r, d in self.decisions if isinstance(d, Allowed))

    @property
    def refused(self) -> tuple[tuple[str, Refused], ...]:
        return tuple((r, d) for r, d in self.decisions if isinstance(d, Refused))

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """Every reason code of the refusals, sorted and unique."""
        codes = {reason.code for reason in self.reasons}
        codes |= {code for _, decision in self.refused for code in decision.reason_codes}
        return tuple(sorted(codes))

    def explain(self) -> str:
        texts = [reason.text for reason in self.reasons]
        texts += [
            f"{recipient}: {reason.text}" for recipient, d in self.refused for reason in d.reasons
        ]
        return "; ".join(texts)


def _present(record: Mapping[str, object], fields: frozenset[str]) -> frozenset[str]:
    return frozenset(f for f in fields if record.get(f) not in (None, []))


def route(
    policy: CompiledPolicy,
    spec: SignalSpec,
    sender: str,
    purpose: str,
    record: Mapping[str, object],
    at: datetime,
) -> Routing:
    """Decide for every candidate recipient of ``record``; pure, like decide() itself."""
    candidates = policy.candidate_recipients(sender, spec.name, purpose, record)
    if not candidates:
        foreign = policy.sender_fields_not_naming(sender, spec.name, purpose, record)
        if foreign:
            reason = Reason(
                ReasonCode.SENDER_NOT_IN_FIELD,
                f"{sender} may only send {spec.name} records whose field "
                f"{foreign[0]!r} names {sender} itself",
            )
            return Routing((), (reason,))
        if policy.by_sender_signal_purpose.get((sender, spec.name, purpose)):
            reason = Reason(
                ReasonCode.NO_RECIPIENT,
                f"the record names no party that an agreement for {purpose} delivers to",
            )
            return Routing((), (reason,))
        # Ask about any recipient of this signal, so the reasons say what is wrong.
        probe = next(
            (r for a in policy.agreements if a.signal == spec.name for r in a.possible_recipients),
            sender,
        )
        refusal = decide(DecisionRequest(sender, spec.name, probe, purpose), policy, at)
        return Routing((), refusal.reasons)
    decisions = []
    for recipient in candidates:
        decision = decide(DecisionRequest(sender, spec.name, recipient, purpose), policy, at)
        if decision.allowed:
            carried = spec.classifications_of(_present(record, decision.fields))
            decision = decide(
                DecisionRequest(sender, spec.name, recipient, purpose, carried), policy, at
            )
        decisions.append((recipient, decision))
    return Routing(tuple(decisions))


def disclosed_fields(decision: Decision, record: Mapping[str, object]) -> frozenset[str]:
    """The fields a recipient gets: the agreement's fields that the record actually holds."""
    return frozenset(f for f in decision.fields if f in record)
