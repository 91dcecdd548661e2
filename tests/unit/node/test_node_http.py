"""The node's HTTP answers that need no broker: every bad request is a typed RFC 9457 problem.

The node here has a real federation and policy; its broker is a closed port,
so a valid publish ends in 503 with Retry-After (the broker is down), and
everything that is refused before that is refused without touching Kafka.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sigex.exchange.protocol import to_json_value
from sigex.node.openapi import PROBLEM_JSON
from tests.unit.node.conftest import node_client
from tests.unit.schemas.conftest import example_records

SIGNAL = "laa.frequent-mover"
PURPOSE = "LAA_SIGNAAL"


def record(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = to_json_value(dict(example_records()[SIGNAL]))
    value.update(changes)
    return value


@pytest.fixture(scope="module")
def client(node_state: Path) -> Any:
    with node_client(node_state, rate=0) as client:
        yield client


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_malformed_json_is_a_400_that_says_where(client: TestClient) -> None:
    body = problem(client.post(f"/v1/signals/{SIGNAL}", content=b'{"purpose": '), 400)
    assert "line 1 column" in body["detail"]


def test_a_body_of_the_wrong_shape_names_each_member_at_fault(client: TestClient) -> None:
    body = problem(client.post(f"/v1/signals/{SIGNAL}", json={"records": [], "extra": 1}), 400)
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/extra", "/purpose", "/records"}


def test_a_wrong_type_is_a_422_pointing_at_the_field(client: TestClient) -> None:
    bad = record(house_number="twelve")
    response = client.post(
        f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "records": [record(), bad]}
    )
    body = problem(response, 422)
    assert [e["pointer"] for e in body["errors"]] == ["/records/1/house_number"]


def test_a_bsn_failing_the_check_digit_is_refused_without_repeating_it(
    client: TestClient,
) -> None:
    bsn = "111222334"  # 111222333 passes the elfproef; the last digit changed
    response = client.post(
        f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "record": record(bsn=bsn)}
    )
    body = problem(response, 422)
    assert body["errors"][0]["pointer"] == "/record/bsn"
    assert "elfproef" in body["errors"][0]["detail"] or "bsn" in body["errors"][0]["detail"]
    assert bsn not in response.text


def test_a_date_that_is_not_iso_8601_points_at_its_field(client: TestClient) -> None:
    response = client.post(
        f"/v1/signals/{SIGNAL}",
        json={"purpose": PURPOSE, "records": [record(period_start="1 januari")]},
    )
    body = problem(response, 422)
    assert body["errors"] == [
        {"pointer": "/records/0/period_start", "detail": "not an ISO 8601 date or time"}
    ]


def test_every_bad_record_is_listed_not_only_the_first(client: TestClient) -> None:
    records = [record(bsn="123"), record(), record(municipality="Amsterdam")]
    body = problem(
        client.post(f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "records": records}), 422
    )
    assert [e["pointer"] for e in body["errors"]] == [
        "/records/0/bsn",
        "/records/2/municipality",
    ]


def test_a_signal_id_twice_in_one_request_is_refused(client: TestClient) -> None:
    one = record()
    body = problem(
        client.post(f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "records": [one, one]}),
        422,
    )
    assert body["errors"][0]["pointer"] == "/records/1/signal_id"


def test_an_unknown_signal_is_a_404_naming_the_catalogue(client: TestClient) -> None:
    body = problem(client.post("/v1/signals/laa.nothing", json={}), 404)
    assert SIGNAL in body["detail"]


def test_an_unknown_purpose_is_a_422_at_purpose(client: TestClient) -> None:
    body = problem(
        client.post(f"/v1/signals/{SIGNAL}", json={"purpose": "CURIOSITY", "record": record()}),
        422,
    )
    assert body["errors"] == [{"pointer": "/purpose", "detail": "not a purpose of the policy"}]


def test_a_body_over_the_limit_is_a_413(node_state: Path) -> None:
    with node_client(node_state, max_body_bytes=1000, rate=0) as small:
        payload = json.dumps({"purpose": PURPOSE, "records": [record()] * 10}).encode()
        problem(small.post(f"/v1/signals/{SIGNAL}", content=payload), 413)


def test_too_many_requests_is_a_429_with_retry_after(node_state: Path) -> None:
    with node_client(node_state, rate=0.5, burst=2) as limited:
        statuses = [limited.get("/v1/policy/explain").status_code for _ in range(3)]
        assert statuses[:2] == [400, 400]  # counted, and refused for the missing parameters
        response = limited.get("/v1/policy/explain")
        problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1


def test_a_broker_that_is_down_gives_503_with_retry_after(client: TestClient) -> None:
    response = client.post(
        f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "records": [record()]}
    )
    body = problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert "nothing was published" in body["detail"]


def test_an_unknown_path_and_a_wrong_method_are_problems_too(client: TestClient) -> None:
    problem(client.get("/v2/everything"), 404)
    problem(client.get(f"/v1/signals/{SIGNAL}"), 405)


def test_a_client_may_publish_only_what_the_node_allows_it(node_state: Path) -> None:
    with node_client(node_state, grants=("loopback=laa.investigation-outcome",), rate=0) as node:
        body = problem(
            node.post(f"/v1/signals/{SIGNAL}", json={"purpose": PURPOSE, "record": record()}),
            403,
        )
        assert "loopback" in body["detail"]


def test_an_idempotency_key_reused_for_another_body_is_refused(client: TestClient) -> None:
    headers = {"Idempotency-Key": "key-reused-1"}
    url = f"/v1/signals/{SIGNAL}"
    first = client.post(url, json={"purpose": PURPOSE, "record": record(bsn="1")}, headers=headers)
    problem(first, 422)
    again = client.post(url, json={"purpose": PURPOSE, "record": record(bsn="1")}, headers=headers)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post(url, json={"purpose": PURPOSE, "record": record()}, headers=headers)
    problem(other, 422)
    assert other.json()["type"].endswith("idempotency-key-reused")


def test_an_answer_that_is_not_final_is_not_kept_for_the_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "key-after-503"}
    url = f"/v1/signals/{SIGNAL}"
    body = {"purpose": PURPOSE, "record": record()}
    problem(client.post(url, json=body, headers=headers), 503)
    response = client.post(url, json=body, headers=headers)
    problem(response, 503)
    assert "idempotent-replayed" not in response.headers  # tried again, not replayed


def test_explain_answers_as_the_policy_decides(client: TestClient) -> None:
    query = {
        "sender": "RVIG",
        "signal": SIGNAL,
        "recipient": "GM0363",
        "purpose": PURPOSE,
        "at": "2027-02-01",
    }
    allowed = client.get("/v1/policy/explain", params=query)
    assert allowed.status_code == 200
    assert allowed.json()["allowed"] is True
    assert allowed.json()["agreement_id"] == "LAA-FREQUENT-MOVER"
    assert "bsn" in allowed.json()["fields"]
    refused = client.get("/v1/policy/explain", params={**query, "recipient": "UWV"})
    assert refused.json()["allowed"] is False and refused.json()["fields"] == []
    assert refused.json()["reasons"]
    problem(client.get("/v1/policy/explain", params={**query, "at": "gisteren"}), 422)


def test_readiness_says_why_the_node_is_not_ready_and_liveness_holds(
    client: TestClient,
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "publisher-not-connected" in ready.json()["reasons"]
    assert client.get("/livez").status_code == 200


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    client.get("/v1/policy/explain")
    text = client.get("/metrics").text
    assert 'sigex_node_requests_total{route="explain",status="400"}' in text
    assert "sigex_node_inbox_signals" in text


def test_beyond_loopback_without_mutual_tls_the_node_does_not_start(node_state: Path) -> None:
    from sigex.node.service import NodeSettings, NodeSettingsError

    with pytest.raises(NodeSettingsError, match="mutual TLS"):
        NodeSettings(host="0.0.0.0").check()
    NodeSettings(host="::1").check()
