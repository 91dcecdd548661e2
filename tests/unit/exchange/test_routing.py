"""route(): every candidate recipient of one record decided, with the fields each may get.

Pure, on the shipped policy and catalogue: the same function the Publisher runs
before a record leaves and the gateway runs on what arrived.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigex.exchange.routing import disclosed_fields, route
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import load_policy
from sigex.policies.decide import Allowed, DecisionRequest, Refused, decide
from sigex.reasons import ReasonCode
from sigex.schemas.catalogue import Catalogue, load_catalogue
from tests.unit.schemas.conftest import example_records

IN_2027 = datetime(2027, 6, 1, 10, 0, tzinfo=UTC)
IN_2029 = datetime(2029, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def payroll(municipality: str = "GM0363") -> dict[str, object]:
    return dict(example_records()["payroll.bsn-mismatch"], municipality=municipality)


def test_the_municipality_named_in_the_record_is_the_one_recipient(
    policy: CompiledPolicy, catalogue: Catalogue
) -> None:
    spec = catalogue.signal("payroll.bsn-mismatch")
    routing = route(policy, spec, "UWV", "BRP_TERUGMELDING", payroll("GM0599"), IN_2027)
    assert [recipient for recipient, _ in routing.allowed] == ["GM0599"]
    assert routing.refused == () and routing.reason_codes == ()
    ((_, decision),) = routing.allowed
    assert isinstance(decision, Allowed)
    assert decision.agreement_id == "PAYROLL-MISMATCH-MUNICIPALITY"
    # the municipality gets its agreement's fields, not the employer's identifiers
    assert "employer_kvk" not in decision.fields and "bsn" in decision.fields
    assert disclosed_fields(decision, payroll("GM0599")) <= decision.fields


def test_an_expired_agreement_refuses_with_its_reason_and_names_it(
    policy: CompiledPolicy, catalogue: Catalogue
) -> None:
    spec = catalogue.signal("payroll.bsn-mismatch")
    routing = route(policy, spec, "UWV", "SUWI64_ARB", payroll(), IN_2029)
    assert routing.allowed == ()
    ((recipient, decision),) = routing.refused
    assert recipient == "NLA" and isinstance(decision, Refused)
    assert ReasonCode.OUTSIDE_VALIDITY in routing.reason_codes
    assert "NLA: " in routing.explain()


def test_a_basis_under_review_is_refused_whatever_the_date(
    policy: CompiledPolicy, catalogue: Catalogue
) -> None:
    spec = catalogue.signal("payroll.bsn-mismatch")
    for moment in (IN_2027, IN_2029):
        routing = route(policy, spec, "UWV", "LA_BSN_FEEDBACK", payroll(), moment)
        assert routing.allowed == ()
        assert ReasonCode.BASIS_UNDER_REVIEW in routing.reason_codes


def test_a_record_naming_no_recipient_is_refused_no_recipient(
    policy: CompiledPolicy, catalogue: Catalogue
) -> None:
    spec = catalogue.signal("payroll.bsn-mismatch")
    routing = route(policy, spec, "UWV", "BRP_TERUGMELDING", payroll(""), IN_2027)
    assert routing.decisions == ()
    assert routing.reason_codes == (ReasonCode.NO_RECIPIENT,)


def test_a_sender_without_any_agreement_gets_the_policys_reasons(
    policy: CompiledPolicy, catalogue: Catalogue
) -> None:
    spec = catalogue.signal("payroll.bsn-mismatch")
    routing = route(policy, spec, "BD", "BRP_TERUGMELDING", payroll(), IN_2027)
    assert routing.decisions == ()
    assert routing.reason_codes and ReasonCode.ALLOWED not in routing.reason_codes
    assert routing.reason_codes == tuple(sorted(set(routing.reason_codes)))


@settings(max_examples=60, deadline=None)
@given(
    sender=st.sampled_from(["UWV", "NLA", "BD", "RVIG", "GM0363"]),
    purpose=st.sampled_from(["BRP_TERUGMELDING", "SUWI64_ARB", "SUWI64_FISC", "LA_BSN_FEEDBACK"]),
    municipality=st.sampled_from(["GM0363", "GM0599", "GM0518"]),
    year=st.integers(min_value=2024, max_value=2030),
)
def test_route_agrees_with_decide_for_every_candidate(
    sender: str, purpose: str, municipality: str, year: int
) -> None:
    policy, catalogue = load_policy(), load_catalogue()
    spec = catalogue.signal("payroll.bsn-mismatch")
    moment = datetime(year, 6, 1, 10, 0, tzinfo=UTC)
    record = payroll(municipality)
    routing = route(policy, spec, sender, purpose, record, moment)
    for recipient, decision in routing.decisions:
        alone = decide(DecisionRequest(sender, spec.name, recipient, purpose), policy, moment)
        assert alone.allowed or not decision.allowed  # route never allows what decide refuses
        if decision.allowed:
            assert decision.agreement_id == alone.agreement_id
