"""decide(): each shipped agreement, each way it is refused, properties of all decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import load_policy
from sigex.policies.decide import Allowed, DecisionRequest, Reason, Refused, decide
from sigex.policies.errors import PolicyDenied, PolicyError
from sigex.reasons import ReasonCode

from .conftest import ALLOWED, SHIPPED  # type: ignore[import-not-found]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def on(day: str) -> datetime:
    """Noon in Amsterdam on ``day``."""
    return datetime.combine(date.fromisoformat(day), time(12), tzinfo=AMSTERDAM)


IDS = [f"{row[0]}:{row[1]}" for row in SHIPPED]


def test_the_table_covers_every_shipped_agreement(policy: CompiledPolicy) -> None:
    assert {row[0] for row in SHIPPED} == {a.id for a in policy.agreements}


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_inside_its_validity(policy: CompiledPolicy, row: tuple[str, ...]) -> None:
    agreement_id, sender, recipient, signal, purpose, _, inside, _, answer = row
    decision = decide(DecisionRequest(sender, signal, recipient, purpose), policy, on(inside))
    agreement = policy.agreement(agreement_id)
    assert decision.agreement_id == agreement_id
    assert decision.agreement_version == agreement.version
    assert decision.legal_basis == agreement.legal_basis
    assert decision.policy_version == policy.version
    assert decision.policy_hash == policy.content_hash
    if answer == ALLOWED:
        assert decision.allowed
        assert decision.fields == agreement.fields
        assert decision.retention_days == agreement.retention_days
        assert decision.reason_codes == (ReasonCode.ALLOWED,)
    else:
        assert not decision.allowed
        assert decision.reason_codes == (answer,)


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
@pytest.mark.parametrize("moment", ["before", "after"])
def test_outside_its_validity(policy: CompiledPolicy, row: tuple[str, ...], moment: str) -> None:
    agreement_id, sender, recipient, signal, purpose, before, _, after, _ = row
    day = before if moment == "before" else after
    decision = decide(DecisionRequest(sender, signal, recipient, purpose), policy, on(day))
    assert not decision.allowed
    assert decision.agreement_id == agreement_id
    assert ReasonCode.OUTSIDE_VALIDITY in decision.reason_codes
    agreement = policy.agreement(agreement_id)
    text = next(r.text for r in decision.reasons if r.code == "OUTSIDE_VALIDITY")
    assert agreement.window.describe() in text
    assert decision.fields == frozenset()
    assert decision.retention_days is None


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_the_wrong_sender_is_refused(policy: CompiledPolicy, row: tuple[str, ...]) -> None:
    _, _, recipient, signal, purpose, _, inside, _, _ = row
    decision = decide(DecisionRequest("SVB", signal, recipient, purpose), policy, on(inside))
    assert not decision.allowed
    assert decision.reason_codes == (ReasonCode.SENDER_NOT_ALLOWED,)
    assert decision.agreement_id is None


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_the_wrong_recipient_is_refused(policy: CompiledPolicy, row: tuple[str, ...]) -> None:
    _, sender, _, signal, purpose, _, inside, _, _ = row
    decision = decide(DecisionRequest(sender, signal, "SVB", purpose), policy, on(inside))
    assert not decision.allowed
    assert decision.reason_codes == (ReasonCode.RECIPIENT_NOT_ALLOWED,)


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_the_wrong_purpose_is_refused(policy: CompiledPolicy, row: tuple[str, ...]) -> None:
    _, sender, recipient, signal, purpose, _, inside, _, _ = row
    decision = decide(
        DecisionRequest(sender, signal, recipient, "WTTA_REGISTER"), policy, on(inside)
    )
    assert not decision.allowed
    assert ReasonCode.PURPOSE_NOT_ALLOWED in decision.reason_codes
    assert purpose in next(r.text for r in decision.reasons if r.code == "PURPOSE_NOT_ALLOWED")


@pytest.mark.parametrize("row", SHIPPED, ids=IDS)
def test_a_classification_the_agreement_does_not_carry_is_refused(
    policy: CompiledPolicy, row: tuple[str, ...]
) -> None:
    agreement_id, sender, recipient, signal, purpose, _, inside, _, answer = row
    agreement = policy.agreement(agreement_id)
    spec = policy.catalogue.signal(signal)
    carried = spec.classifications_of(tuple(agreement.fields))
    foreign = sorted(set(policy.classifications) - carried)[0]
    request = DecisionRequest(sender, signal, recipient, purpose, frozenset({foreign}))
    decision = decide(request, policy, on(inside))
    assert not decision.allowed
    assert ReasonCode.CLASSIFICATION_NOT_ALLOWED in decision.reason_codes
    if answer == ALLOWED:
        fine = DecisionRequest(sender, signal, recipient, purpose, carried)
        assert decide(fine, policy, on(inside)).allowed


def test_the_wtta_starts_at_midnight_in_amsterdam(policy: CompiledPolicy) -> None:
    request = DecisionRequest("NLA", "waadi.admission-violation", "BD", "WTTA_TOEZICHT")
    start = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # 2027-01-01 00:00 in Amsterdam
    assert decide(request, policy, start).allowed
    refused = decide(request, policy, start - timedelta(microseconds=1))
    assert refused.reason_codes == (
        ReasonCode.OUTSIDE_VALIDITY,
        ReasonCode.BASIS_NOT_IN_FORCE,
    )


def test_before_the_wtta_the_same_facts_flow_only_under_suwi_64(policy: CompiledPolicy) -> None:
    at = on("2026-06-01")
    suwi = DecisionRequest("NLA", "waadi.admission-violation", "BD", "SUWI64_FISC")
    wtta = DecisionRequest("NLA", "waadi.admission-violation", "BD", "WTTA_TOEZICHT")
    assert decide(suwi, policy, at).allowed
    assert not decide(wtta, policy, at).allowed
    later = on("2027-06-01")
    assert not decide(suwi, policy, later).allowed
    assert ReasonCode.COOPERATION_NOT_IN_FORCE in decide(suwi, policy, later).reason_codes
    assert decide(wtta, policy, later).allowed


def test_worker_bsns_and_criminal_data_go_only_where_needed(policy: CompiledPolicy) -> None:
    at = on("2027-06-01")
    fields = {
        recipient: decide(
            DecisionRequest("NLA", "waadi.admission-violation", recipient, "WTTA_TOEZICHT"),
            policy,
            at,
        ).fields
        for recipient in ("BD", "UWV", "JUSTIS")
    }
    assert "worker_bsns" in fields["UWV"]
    assert "worker_bsns" not in fields["BD"] | fields["JUSTIS"]
    assert "suspected_offence" in fields["JUSTIS"]
    assert "suspected_offence" not in fields["BD"] | fields["UWV"]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (DecisionRequest("ACME", "laa.frequent-mover", "GM0363", "LAA_SIGNAAL"), "UNKNOWN_PARTY"),
        (DecisionRequest("RVIG", "laa.frequent-mover", "GM9999", "LAA_SIGNAAL"), "UNKNOWN_PARTY"),
        (DecisionRequest("RVIG", "laa.unknown", "GM0363", "LAA_SIGNAAL"), "UNKNOWN_SIGNAL"),
        (DecisionRequest("RVIG", "laa.frequent-mover", "GM0363", "GOSSIP"), "UNKNOWN_PURPOSE"),
        (DecisionRequest("SVB", "laa.frequent-mover", "BD", "SUWI64_SZ"), "NO_AGREEMENT"),
    ],
)
def test_unknown_codes_are_refused_with_their_own_reason(
    policy: CompiledPolicy, request_: DecisionRequest, code: str
) -> None:
    decision = decide(request_, policy, on("2027-02-01"))
    assert not decision.allowed
    assert decision.reason_codes == (code,)


def test_a_naive_moment_is_an_error(policy: CompiledPolicy) -> None:
    request = DecisionRequest("RVIG", "laa.frequent-mover", "GM0363", "LAA_SIGNAAL")
    with pytest.raises(PolicyError, match="timezone-aware"):
        decide(request, policy, datetime(2027, 2, 1))


def test_a_refusal_can_be_raised_with_its_decision(policy: CompiledPolicy) -> None:
    request = DecisionRequest("UWV", "payroll.bsn-mismatch", "RVIG", "LA_BSN_FEEDBACK")
    decision = decide(request, policy, on("2027-02-01"))
    error = PolicyDenied(decision)
    assert error.decision is decision
    assert "BASIS_UNDER_REVIEW" in str(error)


def test_a_refusal_discloses_nothing_by_construction() -> None:
    refused = Refused("P", (Reason(ReasonCode.NO_AGREEMENT, "x"),), "v", "h")
    assert refused.allowed is False
    assert refused.fields == frozenset()
    assert refused.retention_days is None
    with pytest.raises(TypeError):
        Refused("P", (Reason(ReasonCode.NO_AGREEMENT, "x"),), "v", "h", fields={"bsn"})  # type: ignore[call-arg]


def test_a_decision_always_has_a_reason() -> None:
    with pytest.raises(ValueError, match="at least one reason"):
        Refused("P", (), "v", "h")
    with pytest.raises(ValueError, match="at least one reason"):
        Allowed("A", 1, "SUWI64", "P", frozenset({"bsn"}), 30, (), "v", "h")


def test_every_answer_of_decide_is_allowed_or_refused(policy: CompiledPolicy) -> None:
    request = DecisionRequest("UWV", "payroll.bsn-mismatch", "RVIG", "LA_BSN_FEEDBACK")
    for day in ("2026-06-01", "2027-02-01"):
        decision = decide(request, policy, on(day))
        assert isinstance(decision, Allowed | Refused)
        assert decision.allowed is isinstance(decision, Allowed)


# Candidate recipients --------------------------------------------------------------


def test_the_frequent_mover_goes_to_the_municipality_of_the_address(policy: CompiledPolicy) -> None:
    record = {"municipality": "GM0599", "bsn": "x"}
    assert policy.candidate_recipients("RVIG", "laa.frequent-mover", "LAA_SIGNAAL", record) == (
        "GM0599",
    )


@pytest.mark.parametrize("value", [None, "GM9999", "", 363])
def test_a_rule_that_yields_no_party_yields_nothing(policy: CompiledPolicy, value: object) -> None:
    record = {"municipality": value}
    assert (
        policy.candidate_recipients("UWV", "payroll.bsn-mismatch", "BRP_TERUGMELDING", record) == ()
    )


def test_fixed_recipients_and_all_purposes(policy: CompiledPolicy) -> None:
    record = {"municipality": "GM0344"}
    assert policy.candidate_recipients("UWV", "payroll.bsn-mismatch", "SUWI64_ARB", record) == (
        "NLA",
    )
    assert policy.candidate_deliveries("UWV", "payroll.bsn-mismatch", record) == (
        ("BD", "SUWI64_FISC"),
        ("GM0344", "BRP_TERUGMELDING"),
        ("NLA", "SUWI64_ARB"),
        ("RVIG", "LA_BSN_FEEDBACK"),
    )
    assert policy.candidate_recipients("BD", "payroll.bsn-mismatch", "SUWI64_ARB", record) == ()


def test_routes_expand_rules_to_every_party_of_the_kind(policy: CompiledPolicy) -> None:
    municipalities = policy.parties_of_kind("municipality")
    assert len(municipalities) >= 2
    frequent = {r.recipient for r in policy.routes() if r.signal == "laa.frequent-mover"}
    assert frequent == municipalities
    outcome = {r.sender for r in policy.routes() if r.signal == "laa.investigation-outcome"}
    assert outcome == municipalities
    assert {a.id for a in policy.agreements_for_sender("JUSTIS")} == {
        "WAADI-BD-WTTA",
        "WAADI-UWV-WTTA",
    }
    assert "WAADI-JUSTIS-WTTA" in {a.id for a in policy.agreements_for_recipient("JUSTIS")}


# Properties ------------------------------------------------------------------------

_POLICY = load_policy()
_PARTIES = [*sorted(_POLICY.parties), "ACME"]
_SIGNALS = [*sorted(_POLICY.catalogue.names()), "x.unknown"]
_PURPOSES = [*sorted(_POLICY.purposes), "GOSSIP"]
_CLASSES = sorted(_POLICY.classifications)

requests = st.builds(
    DecisionRequest,
    sender=st.sampled_from(_PARTIES),
    signal=st.sampled_from(_SIGNALS),
    recipient=st.sampled_from(_PARTIES),
    purpose=st.sampled_from(_PURPOSES),
    classifications=st.frozensets(st.sampled_from(_CLASSES), max_size=3),
)
# Most requests should hit an agreement, so half of them are built from the routes.
routed_requests = st.builds(
    lambda route, classes: DecisionRequest(
        route.sender, route.signal, route.recipient, route.purpose, classes
    ),
    st.sampled_from(_POLICY.routes()),
    st.frozensets(st.sampled_from(_CLASSES), max_size=2),
)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2034, 1, 1), timezones=st.just(UTC)
)


def reference_allows(request: DecisionRequest, policy: CompiledPolicy, at: datetime) -> str | None:
    """A slow, obvious reading of the agreements: the id of the one that allows, or None."""
    day = policy.local_day(at)
    for agreement in policy.agreements:
        basis = policy.legal_bases[agreement.legal_basis]
        cooperation = policy.cooperations.get(agreement.cooperation or "")
        spec = policy.catalogue.signal(agreement.signal)
        if (
            agreement.signal == request.signal
            and agreement.purpose == request.purpose
            and request.sender in agreement.possible_senders
            and request.recipient in agreement.possible_recipients
            and request.sender != request.recipient
            and agreement.window.contains(day)
            and basis.status.usable
            and basis.window.contains(day)
            and (cooperation is None or cooperation.window.contains(day))
            and request.classifications <= spec.classifications_of(tuple(agreement.fields))
        ):
            return agreement.id
    return None


@settings(max_examples=1500, deadline=None)
@given(request=st.one_of(requests, routed_requests), at=moments)
def test_decide_agrees_with_a_plain_reading_of_the_agreements(
    request: DecisionRequest, at: datetime
) -> None:
    decision = decide(request, _POLICY, at)
    expected = reference_allows(request, _POLICY, at)
    assert decision.allowed == (expected is not None)
    if expected is not None:
        assert decision.agreement_id == expected


@settings(max_examples=1500, deadline=None)
@given(request=st.one_of(requests, routed_requests), at=moments)
def test_a_refusal_discloses_nothing_and_every_disclosure_is_in_the_schema(
    request: DecisionRequest, at: datetime
) -> None:
    decision = decide(request, _POLICY, at)
    assert decision == decide(request, _POLICY, at)  # pure: same question, same answer
    assert decision.reasons
    assert all(reason.code in set(ReasonCode) for reason in decision.reasons)
    assert decision.policy_version == _POLICY.version
    assert decision.policy_hash == _POLICY.content_hash
    if not decision.allowed:
        assert decision.fields == frozenset()
        assert decision.retention_days is None
        assert ReasonCode.ALLOWED not in decision.reason_codes
        return
    assert decision.agreement_id is not None
    agreement = _POLICY.agreement(decision.agreement_id, decision.agreement_version)
    spec = _POLICY.catalogue.signal(request.signal)
    assert decision.fields <= agreement.fields <= spec.field_set
    disclosed = spec.classifications_of(tuple(decision.fields))
    assert request.classifications <= disclosed
    assert disclosed <= _POLICY.purposes[agreement.purpose].classifications
    basis = _POLICY.legal_bases[agreement.legal_basis]
    assert basis.status.usable
    assert basis.window.contains(_POLICY.local_day(at))
    assert decision.reason_codes == (ReasonCode.ALLOWED,)
