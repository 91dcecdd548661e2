"""decide(): the pure policy decision. Request, compiled policy and a moment in; a decision out.

No I/O, no global state, no cache. The allowed path is one dict lookup, a
time comparison and a subset test, returning a decision prepared by the
compiler; a refusal is worked out with its reasons in plain words.
"""

from __future__ import annotations

from datetime import datetime

from sigex.policies.compiled import CompiledPolicy, RouteEntry
from sigex.policies.decision import Allowed, Decision, DecisionRequest, Reason, Refused
from sigex.policies.errors import PolicyError
from sigex.policies.model import Agreement, BasisStatus, Cooperation, LegalBasis
from sigex.reasons import ReasonCode

__all__ = ["Allowed", "Decision", "DecisionRequest", "Reason", "Refused", "decide"]

_LISTED = 6  # how many alternatives a reason names before it says "and N more"


def decide(request: DecisionRequest, policy: CompiledPolicy, at: datetime) -> Decision:
    """Decide whether ``request`` is allowed by ``policy`` at the moment ``at`` (timezone-aware)."""
    if at.tzinfo is None:
        raise PolicyError("decide() needs a timezone-aware moment")
    entries = policy.route_index.get(
        (request.sender, request.signal, request.recipient, request.purpose)
    )
    if entries is None:
        return _refuse_unmatched(request, policy)
    for entry in entries:
        if (
            entry.clear_start <= at < entry.clear_end
            and request.classifications <= entry.classifications
        ):
            return entry.allowed
    return _refuse_matched(request, policy, entries, at)


def _refusal(
    request: DecisionRequest,
    policy: CompiledPolicy,
    reasons: list[Reason],
    entry: RouteEntry | None = None,
) -> Decision:
    agreement = entry.agreement if entry is not None else None
    return Refused(
        agreement_id=agreement.id if agreement else None,
        agreement_version=agreement.version if agreement else None,
        legal_basis=agreement.legal_basis if agreement else None,
        purpose=request.purpose,
        reasons=tuple(reasons),
        policy_version=policy.version,
        policy_hash=policy.content_hash,
    )


def _listing(codes: set[str]) -> str:
    ordered = sorted(codes)
    shown = ", ".join(ordered[:_LISTED])
    more = len(ordered) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _refuse_unmatched(request: DecisionRequest, policy: CompiledPolicy) -> Decision:
    """No agreement covers this exact route: say which part of the request is the problem."""
    reasons: list[Reason] = []
    if request.signal not in policy.catalogue:
        reasons.append(
            Reason(ReasonCode.UNKNOWN_SIGNAL, f"signal {request.signal} is not in the catalogue")
        )
    for role, party in (("sender", request.sender), ("recipient", request.recipient)):
        if party not in policy.parties:
            reasons.append(Reason(ReasonCode.UNKNOWN_PARTY, f"{role} {party} is not a known party"))
    if request.purpose not in policy.purposes:
        reasons.append(
            Reason(ReasonCode.UNKNOWN_PURPOSE, f"purpose {request.purpose} is not a known purpose")
        )
    if reasons:
        return _refusal(request, policy, reasons)

    empty: frozenset[str] = frozenset()
    alternatives = policy.alternatives
    any_for_signal = ("signal", request.signal, "", "") in alternatives
    senders = set(
        alternatives.get(("sender", request.signal, request.recipient, request.purpose), empty)
    )
    recipients = set(
        alternatives.get(("recipient", request.sender, request.signal, request.purpose), empty)
    )
    purposes = set(
        alternatives.get(("purpose", request.sender, request.signal, request.recipient), empty)
    )
    if not any_for_signal:
        reasons.append(
            Reason(ReasonCode.NO_AGREEMENT, f"no agreement covers signal {request.signal}")
        )
    if senders:
        reasons.append(
            Reason(
                ReasonCode.SENDER_NOT_ALLOWED,
                f"{request.sender} may not send {request.signal} to {request.recipient} for "
                f"{request.purpose}; only {_listing(senders)} may",
            )
        )
    if recipients:
        reasons.append(
            Reason(
                ReasonCode.RECIPIENT_NOT_ALLOWED,
                f"{request.signal} from {request.sender} for {request.purpose} may not go to "
                f"{request.recipient}; only to {_listing(recipients)}",
            )
        )
    if purposes:
        reasons.append(
            Reason(
                ReasonCode.PURPOSE_NOT_ALLOWED,
                f"{request.sender} may send {request.signal} to {request.recipient} only for "
                f"{_listing(purposes)}, not for {request.purpose}",
            )
        )
    if not reasons:
        reasons.append(
            Reason(
                ReasonCode.NO_AGREEMENT,
                f"no agreement lets {request.sender} send {request.signal} to "
                f"{request.recipient} for {request.purpose}",
            )
        )
    return _refusal(request, policy, reasons)


def _pick_entry(entries: tuple[RouteEntry, ...], at: datetime) -> RouteEntry:
    """The agreement valid at ``at``, else the last one started before it, else the first."""
    for entry in entries:
        if entry.start <= at < entry.end:
            return entry
    started = [entry for entry in entries if entry.start <= at]
    return started[-1] if started else entries[0]


def time_reasons(
    agreement: Agreement,
    basis: LegalBasis,
    cooperation: Cooperation | None,
    flags: tuple[bool, bool, bool],
) -> tuple[Reason, ...]:
    """The reasons an agreement does not apply, given which windows the moment lies outside.

    ``flags`` says whether the moment is outside the agreement's, the basis's and
    the cooperation's window. The texts name the windows, not the moment, so the
    compiler can prepare these refusals once per agreement.
    """
    outside_agreement, outside_basis, outside_cooperation = flags
    name = f"agreement {agreement.id} version {agreement.version}"
    reasons: list[Reason] = []
    if outside_agreement:
        reasons.append(
            Reason(
                ReasonCode.OUTSIDE_VALIDITY,
                f"the moment is outside {name}, valid {agreement.window.describe()}",
            )
        )
    if basis.status is BasisStatus.UNDER_REVIEW:
        reasons.append(
            Reason(
                ReasonCode.BASIS_UNDER_REVIEW,
                f"legal basis {basis.code} ({basis.citation}) is under review and carries "
                f"no delivery until a person records it as in force",
            )
        )
    elif basis.status is BasisStatus.REPEALED:
        reasons.append(
            Reason(
                ReasonCode.BASIS_NOT_IN_FORCE,
                f"legal basis {basis.code} ({basis.citation}) is repealed",
            )
        )
    elif outside_basis:
        reasons.append(
            Reason(
                ReasonCode.BASIS_NOT_IN_FORCE,
                f"the moment is outside legal basis {basis.code} ({basis.citation}), "
                f"in force {basis.window.describe()}",
            )
        )
    if cooperation is not None and outside_cooperation:
        reasons.append(
            Reason(
                ReasonCode.COOPERATION_NOT_IN_FORCE,
                f"the moment is outside cooperation {cooperation.code} ({cooperation.name}), "
                f"declared {cooperation.window.describe()}",
            )
        )
    return tuple(reasons)


def refusal_for(
    request_purpose: str,
    agreement: Agreement,
    reasons: tuple[Reason, ...],
    policy_version: str,
    policy_hash: str,
) -> Decision:
    """A refusal that names the agreement it was measured against."""
    return Refused(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        legal_basis=agreement.legal_basis,
        purpose=request_purpose,
        reasons=reasons,
        policy_version=policy_version,
        policy_hash=policy_hash,
    )


def _refuse_matched(
    request: DecisionRequest, policy: CompiledPolicy, entries: tuple[RouteEntry, ...], at: datetime
) -> Decision:
    """An agreement covers the route, but not at this moment or not with these classifications."""
    entry = _pick_entry(entries, at)
    flags = (
        not entry.start <= at < entry.end,
        not entry.basis_start <= at < entry.basis_end,
        not entry.cooperation_start <= at < entry.cooperation_end,
    )
    extra = request.classifications - entry.classifications
    if not extra:
        prepared = entry.refusals.get(flags)
        if prepared is not None:
            return prepared
    agreement = entry.agreement
    basis = policy.legal_bases[agreement.legal_basis]
    cooperation = policy.cooperations.get(agreement.cooperation or "")
    reasons = list(time_reasons(agreement, basis, cooperation, flags))
    if extra:
        reasons.append(
            Reason(
                ReasonCode.CLASSIFICATION_NOT_ALLOWED,
                f"agreement {agreement.id} version {agreement.version} does not carry data "
                f"classified {_listing(set(extra))} (it carries "
                f"{_listing(set(entry.classifications))})",
            )
        )
    if not reasons:  # cannot happen: the clear window is the intersection of the three above
        reasons.append(Reason(ReasonCode.NO_AGREEMENT, "the agreement does not apply"))
    return refusal_for(
        request.purpose, agreement, tuple(reasons), policy.version, policy.content_hash
    )
