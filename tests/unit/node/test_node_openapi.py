"""The node's OpenAPI 3.1 document: valid, the same routes as the app, and true to its answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route
from starlette.testclient import TestClient

from sigex.exchange.protocol import to_json_value
from sigex.node.app import ROUTES
from sigex.node.openapi import PROBLEM_JSON, problem_statuses
from sigex.schemas.catalogue import load_catalogue
from tests.unit.node.conftest import node_client
from tests.unit.schemas.conftest import example_records


@pytest.fixture(scope="module")
def client(node_state: Path) -> Any:
    with node_client(node_state, rate=0) as client:
        yield client


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator whose $refs resolve inside the OpenAPI document."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:node-openapi", resource)
    wrapped = {**schema, "$id": "urn:node-openapi-schema"}
    return Draft202012Validator(
        _rebase(wrapped),
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _rebase(value: Any) -> Any:
    """Point every local ``#/components/...`` reference at the whole document."""
    if isinstance(value, dict):
        return {
            key: (
                "urn:node-openapi" + item
                if key == "$ref" and item.startswith("#/")
                else _rebase(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rebase(item) for item in value]
    return value


def response_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    answer = document["paths"][path][method]["responses"][str(status)]
    content = answer["content"]
    media = PROBLEM_JSON if PROBLEM_JSON in content else "application/json"
    return content[media]["schema"]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_the_document_lists_exactly_the_routes_the_node_serves(
    document: dict[str, Any],
) -> None:
    served = set()
    for route in ROUTES:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method == "HEAD":
                continue
            if route.path == "/v1/signals/{signal}":
                served |= {
                    (f"/v1/signals/{name}", method.lower()) for name in load_catalogue().names()
                }
            else:
                served.add((route.path, method.lower()))
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == served


def test_every_signal_record_of_the_examples_fits_its_documented_schema(
    document: dict[str, Any],
) -> None:
    for name, record in example_records().items():
        schema = document["components"]["schemas"][f"Record.{name}"]
        errors = list(schema_validator(document, schema).iter_errors(to_json_value(record)))
        assert errors == [], (name, [e.message for e in errors])


def test_a_record_with_an_unknown_field_does_not_fit_its_documented_schema(
    document: dict[str, Any],
) -> None:
    record = to_json_value(example_records()["laa.frequent-mover"])
    schema = document["components"]["schemas"]["Record.laa.frequent-mover"]
    assert not schema_validator(document, schema).is_valid({**record, "nationality": "PL"})


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/v1/signals/laa.frequent-mover", {"content": b"{"}, 400),
        ("post", "/v1/signals/laa.frequent-mover", {"json": {"purpose": "X", "record": {}}}, 422),
        (
            "post",
            "/v1/signals/laa.frequent-mover",
            {"json": {"purpose": "LAA_SIGNAAL", "record": None}},
            422,
        ),
        ("post", "/v1/deliveries/ack", {"json": {"ids": []}}, 400),
        ("get", "/v1/policy/explain", {"params": {"sender": "RVIG"}}, 400),
        (
            "get",
            "/v1/policy/explain",
            {
                "params": {
                    "sender": "RVIG",
                    "signal": "laa.x",
                    "recipient": "GM0363",
                    "purpose": "LAA_SIGNAAL",
                }
            },
            404,
        ),
        ("get", "/readyz", {}, 503),
        ("get", "/livez", {}, 200),
    ],
)
def test_the_node_answers_as_its_document_says(
    client: TestClient,
    document: dict[str, Any],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status, response.text
    schema = response_schema(document, path, method, status)
    errors = list(schema_validator(document, schema).iter_errors(response.json()))
    assert errors == [], [e.message for e in errors]


def test_a_valid_publish_request_fits_the_documented_request_schema(
    document: dict[str, Any],
) -> None:
    record = to_json_value(example_records()["laa.frequent-mover"])
    schema = document["components"]["schemas"]["PublishRequest.laa.frequent-mover"]
    validator = schema_validator(document, schema)
    assert validator.is_valid({"purpose": "LAA_SIGNAAL", "records": [record]})
    assert validator.is_valid({"purpose": "LAA_SIGNAAL", "record": record})
    assert not validator.is_valid({"purpose": "LAA_SIGNAAL", "record": record, "records": []})
    assert not validator.is_valid({"purpose": "CURIOSITY", "record": record})


def test_every_problem_status_the_node_can_answer_is_documented_somewhere(
    document: dict[str, Any],
) -> None:
    documented = {
        int(status)
        for item in document["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
    }
    assert problem_statuses() - {405} <= documented  # 405: any path, any other method
