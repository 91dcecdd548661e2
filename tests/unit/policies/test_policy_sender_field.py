"""A sender named in a field of the record: a municipality reports outcomes only for itself."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sigex.exchange.routing import route
from sigex.policies.compiled import CompiledPolicy
from sigex.reasons import ReasonCode
from sigex.schemas.catalogue import load_catalogue

AT = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
SIGNAL = "laa.investigation-outcome"
PURPOSE = "LAA_TERUGKOPPELING"


def _outcome(municipality: str) -> dict[str, object]:
    return {
        "signal_id": str(uuid.uuid4()),
        "detected_at": AT,
        "in_reply_to": str(uuid.uuid4()),
        "municipality": municipality,
        "outcome": "ADDRESS_CONFIRMED",
        "concluded_on": date(2027, 1, 20),
    }


def test_the_outcome_agreement_names_its_sender_in_the_municipality_field(
    policy: CompiledPolicy,
) -> None:
    agreement = policy.agreement("LAA-INVESTIGATION-OUTCOME")
    assert agreement.sender_field == "municipality"
    assert agreement.describe_sender() == "the municipality in field 'municipality'"


def test_a_municipality_reports_outcomes_for_itself(policy: CompiledPolicy) -> None:
    spec = load_catalogue().signal(SIGNAL)
    routing = route(policy, spec, "GM0363", PURPOSE, _outcome("GM0363"), AT)
    assert [recipient for recipient, _ in routing.allowed] == ["RVIG"]


def test_an_outcome_for_another_municipality_is_refused(policy: CompiledPolicy) -> None:
    spec = load_catalogue().signal(SIGNAL)
    for field_value in ("GM0599", None):
        record = _outcome("GM0599")
        record["municipality"] = field_value
        routing = route(policy, spec, "GM0363", PURPOSE, record, AT)
        assert not routing.allowed
        assert routing.reason_codes == (ReasonCode.SENDER_NOT_IN_FIELD,)
        assert "GM0599" not in routing.explain()
    assert policy.candidate_deliveries("GM0363", SIGNAL, _outcome("GM0599")) == ()
