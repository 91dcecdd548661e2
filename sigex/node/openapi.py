"""The node's OpenAPI 3.1 document, built from the catalogue and the policy it serves.

Each signal has its own publish path, whose request schema is the signal's
Avro schema said in JSON Schema (dates and times as ISO 8601 strings), so a
partner's developer can generate a client, and a validator can check a body,
without reading Avro. ``tests/unit/node/test_node_openapi.py`` validates the
document and checks it against the routes and the answers the node gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigex.node.errors import NodeError
from sigex.policies.compiled import CompiledPolicy
from sigex.producers.publisher import MAX_BATCH
from sigex.schemas.catalogue import Catalogue, SignalSpec

PROBLEM_JSON = "application/problem+json"
_IDENTIFIER_PATTERNS = {
    "bsn": ("^[0-9]{9}$", "a BSN: nine digits passing the elfproef (11-test)"),
    "municipality": ("^GM[0-9]{4}$", "a CBS municipality code, GMnnnn"),
    "kvk": ("^[0-9]{8}$", "a KvK number: eight digits"),
    "loonheffingennummer": ("^[0-9]{9}L[0-9]{2}$", "a loonheffingennummer: 123456789L01"),
}


def avro_as_json_schema(schema: Any) -> dict[str, Any]:
    """One Avro field type (fastavro's parsed form) as JSON Schema, in its JSON reading."""
    if isinstance(schema, list):
        return {"anyOf": [avro_as_json_schema(branch) for branch in schema]}
    if isinstance(schema, str):
        return _primitive(schema, None)
    kind = schema.get("type")
    if kind == "enum":
        return {"type": "string", "enum": list(schema["symbols"])}
    if kind == "array":
        return {"type": "array", "items": avro_as_json_schema(schema["items"])}
    if kind == "map":
        return {"type": "object", "additionalProperties": avro_as_json_schema(schema["values"])}
    return _primitive(str(kind), schema.get("logicalType"))


def _primitive(kind: str, logical: str | None) -> dict[str, Any]:
    if logical == "date":
        return {"type": "string", "format": "date"}
    if logical in ("timestamp-millis", "timestamp-micros"):
        return {"type": "string", "format": "date-time", "description": "with a UTC offset"}
    if logical == "uuid":
        return {"type": "string", "format": "uuid"}
    types: dict[str, dict[str, Any]] = {
        "null": {"type": "null"},
        "boolean": {"type": "boolean"},
        "int": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        "long": {"type": "integer"},
        "float": {"type": "number"},
        "double": {"type": "number"},
        "string": {"type": "string"},
        "bytes": {"type": "string", "contentEncoding": "base64"},
    }
    return dict(types.get(kind, {}))


def record_schema(spec: SignalSpec) -> dict[str, Any]:
    """The JSON Schema of one record of ``spec``."""
    docs = {f["name"]: f.get("doc", "") for f in spec.parsed_schema.get("fields", [])}
    properties: dict[str, Any] = {}
    for name in spec.field_names:
        prop = avro_as_json_schema(spec.field_schemas[name])
        check = spec.identifier_checks.get(name)
        if check in _IDENTIFIER_PATTERNS:
            pattern, text = _IDENTIFIER_PATTERNS[check]
            target = prop if prop.get("type") == "string" else None
            if prop.get("type") == "array":
                target = prop["items"]
            if target is not None:
                target["pattern"] = pattern
            prop["description"] = f"{docs.get(name, '')} Checked: {text}.".strip()
        elif docs.get(name):
            prop["description"] = docs[name]
        properties[name] = prop
    return {
        "type": "object",
        "title": f"{spec.name} v{spec.version}",
        "properties": properties,
        "required": sorted(spec.required_fields),
        "additionalProperties": False,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}


_PROBLEMS = {
    "400": "Malformed JSON or a body of the wrong shape",
    "403": "This client may not make this call",
    "413": "The body is larger than the node takes",
    "429": "Too many requests from this client (see Retry-After)",
    "500": "The node failed (no stack trace; the node's log has the error type)",
}


def _with_problems(responses: dict[str, Any], *statuses: str) -> dict[str, Any]:
    for status in ("400", "403", "429", "500", *statuses):
        responses[status] = _problem(_PROBLEMS.get(status, responses.get(status, "")))
    return responses


def _publish_path(spec: SignalSpec, policy: CompiledPolicy) -> dict[str, Any]:
    name = spec.name
    return {
        "post": {
            "operationId": f"publish_{name.replace('.', '_').replace('-', '_')}",
            "summary": f"Publish {name} signals",
            "description": (
                "Validate every record, decide each one against the agreements in force, "
                "seal and publish. A record that does not fit refuses the whole request "
                "(422, nothing sent); records the policy refuses are answered with their "
                "reasons and audited. An Idempotency-Key makes a retry publish nothing twice."
            ),
            "tags": ["publishing"],
            "parameters": [_ref_param("IdempotencyKey"), _ref_param("Traceparent")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(f"PublishRequest.{name}")}},
            },
            "responses": _with_problems(
                {
                    "200": _json(_ref("PublishAnswer"), "Each record published or refused"),
                    "409": "A request with this Idempotency-Key is being answered",
                    "413": "",
                    "422": "A record does not fit (nothing sent), an unknown purpose, "
                    "or an Idempotency-Key used for another request",
                    "503": "The broker is down; the answer says which records went",
                },
                "409",
                "413",
                "422",
                "503",
            ),
        }
    }


def _ref_param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _health(description: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": description,
            "tags": ["operations"],
            "responses": {
                "200": _json(_ref("Health"), "Yes"),
                "503": _json(_ref("Health"), "No, with the reasons"),
            },
        }
    }


def openapi_document(
    catalogue: Catalogue, policy: CompiledPolicy, party: str, version: str
) -> dict[str, Any]:
    """The whole document for a node of ``party``."""
    purposes = sorted(policy.purposes)
    schemas: dict[str, Any] = {
        "Problem": _problem_schema(),
        "PublishAnswer": _publish_answer_schema(),
        "Delivery": _delivery_schema(),
        "Deliveries": {
            "type": "object",
            "required": ["deliveries", "lease_seconds"],
            "properties": {
                "deliveries": {"type": "array", "items": _ref("Delivery")},
                "lease_seconds": {"type": "number"},
            },
        },
        "AckRequest": {
            "type": "object",
            "required": ["message_ids"],
            "additionalProperties": False,
            "properties": {
                "message_ids": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200},
                }
            },
        },
        "AckAnswer": {
            "type": "object",
            "required": ["acknowledged", "unknown"],
            "properties": {
                "acknowledged": {"type": "array", "items": {"type": "string"}},
                "unknown": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Not held by this node (acknowledged before, or its lease "
                    "went to another member of the group): it is offered again if it was not "
                    "acknowledged.",
                },
            },
        },
        "Explanation": _explanation_schema(),
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
    paths: dict[str, Any] = {}
    for spec in catalogue:
        if spec.version != catalogue.signal(spec.name).version:
            continue  # the newest version of each signal is the one published
        schemas[f"Record.{spec.name}"] = record_schema(spec)
        schemas[f"PublishRequest.{spec.name}"] = _publish_request_schema(spec.name, purposes)
        paths[f"/v1/signals/{spec.name}"] = _publish_path(spec, policy)
    paths["/v1/deliveries"] = {
        "get": {
            "operationId": "receive",
            "summary": "Take signals delivered to this party (long poll)",
            "description": (
                "Opened, verified signals, oldest first, each lent to the caller for "
                "lease_seconds: acknowledge them with POST /v1/deliveries/ack, or they are "
                "offered again. A signal may come more than once: keep its message_id."
            ),
            "tags": ["receiving"],
            "parameters": [
                _query("purpose", {"type": "string", "enum": purposes}, "Only this purpose"),
                _query("signal", {"type": "string", "enum": catalogue.names()}, "Only this"),
                _query("max", {"type": "integer", "minimum": 1, "maximum": 500}, "At most"),
                _query(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 60},
                    "Seconds to wait for a first signal (default 20)",
                ),
                _ref_param("Traceparent"),
            ],
            "responses": _with_problems(
                {
                    "200": _json(_ref("Deliveries"), "The signals (possibly none)"),
                    "503": "The node cannot receive now",
                },
                "503",
            ),
        }
    }
    paths["/v1/deliveries/ack"] = {
        "post": {
            "operationId": "acknowledge",
            "summary": "Acknowledge signals: receipt written, then offset committed",
            "tags": ["receiving"],
            "parameters": [_ref_param("Traceparent")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("AckRequest")}},
            },
            "responses": _with_problems(
                {
                    "200": _json(_ref("AckAnswer"), "Durable: on record and committed"),
                    "413": "",
                    "503": "Not acknowledged (the receipts could not be written); "
                    "the signals are offered again",
                },
                "413",
                "503",
            ),
        }
    }
    paths["/v1/policy/explain"] = {
        "get": {
            "operationId": "explain",
            "summary": "Decide one delivery and say why (as 'sigex policy explain')",
            "tags": ["policy"],
            "parameters": [
                _query("sender", {"type": "string"}, "Party code", required=True),
                _query("signal", {"type": "string"}, "Signal name", required=True),
                _query("recipient", {"type": "string"}, "Party code", required=True),
                _query("purpose", {"type": "string"}, "Purpose code", required=True),
                _query("at", {"type": "string"}, "A date or an ISO 8601 moment; default now"),
                {
                    "name": "classification",
                    "in": "query",
                    "description": "A classification the delivery carries (repeatable)",
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "style": "form",
                    "explode": True,
                },
            ],
            "responses": _with_problems(
                {
                    "200": _json(_ref("Explanation"), "The decision with its reasons"),
                    "404": "Unknown signal",
                    "422": "Unknown purpose or party, or a malformed moment",
                },
                "404",
                "422",
            ),
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "tags": ["operations"],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
        }
    }
    paths["/livez"] = _health("Is the process alive?")
    paths["/readyz"] = _health("Can it publish and receive now?")
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"sigex partner node of {party}",
            "version": version,
            "description": (
                "Publish and receive signals of the sigex exchange over HTTP. "
                "Errors are RFC 9457 problem documents. See docs/partner-node.md."
            ),
            "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("publishing", "receiving", "policy", "operations")],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "Any unique string (a UUID): the same key with the same "
                    "body is answered once and then from memory for 24 hours",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
                "Traceparent": {
                    "name": "traceparent",
                    "in": "header",
                    "description": "W3C trace context, carried into the envelope and the "
                    "access log; one is made when absent",
                    "schema": {"type": "string"},
                },
            },
        },
    }


def _query(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _publish_request_schema(signal: str, purposes: list[str]) -> dict[str, Any]:
    purpose = {"type": "string", "enum": purposes}
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["purpose", "records"],
                "additionalProperties": False,
                "properties": {
                    "purpose": purpose,
                    "records": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_BATCH,
                        "items": _ref(f"Record.{signal}"),
                    },
                },
            },
            {
                "type": "object",
                "required": ["purpose", "record"],
                "additionalProperties": False,
                "properties": {"purpose": purpose, "record": _ref(f"Record.{signal}")},
            },
        ]
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pointer", "detail"],
                    "properties": {
                        "pointer": {"type": "string", "description": "RFC 6901 JSON Pointer"},
                        "detail": {"type": "string"},
                    },
                },
            },
            "sent": {"type": "array", "items": {"type": "integer"}},
            "not_sent": {"type": "array", "items": {"type": "integer"}},
            "header": {"type": "string"},
            "parameter": {"type": "string"},
        },
    }


def _publish_answer_schema() -> dict[str, Any]:
    reason = {
        "type": "object",
        "required": ["code", "text"],
        "properties": {"code": {"type": "string"}, "text": {"type": "string"}},
    }
    return {
        "type": "object",
        "required": ["signal", "purpose", "trace_id", "published", "refused", "results"],
        "properties": {
            "signal": {"type": "string"},
            "purpose": {"type": "string"},
            "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "published": {"type": "integer", "minimum": 0},
            "refused": {"type": "integer", "minimum": 0},
            "results": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["index", "status", "message_id", "trace_id"],
                            "properties": {
                                "index": {"type": "integer"},
                                "status": {"const": "published"},
                                "message_id": {"type": "string"},
                                "trace_id": {"type": "string"},
                                "recipients": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        {
                            "type": "object",
                            "required": ["index", "status", "reason_codes", "reasons"],
                            "properties": {
                                "index": {"type": "integer"},
                                "status": {"const": "refused"},
                                "reason_codes": {"type": "array", "items": {"type": "string"}},
                                "reasons": {"type": "array", "items": reason},
                            },
                        },
                    ]
                },
            },
        },
    }


def _delivery_schema() -> dict[str, Any]:
    text = {"type": "string"}
    moment = {"type": "string", "format": "date-time"}
    return {
        "type": "object",
        "required": [
            "message_id",
            "trace_id",
            "signal",
            "sender",
            "recipient",
            "purpose",
            "legal_basis",
            "agreement_id",
            "agreement_version",
            "decision",
            "fields",
        ],
        "properties": {
            "message_id": text,
            "trace_id": text,
            "signal": text,
            "sender": text,
            "recipient": text,
            "purpose": text,
            "legal_basis": text,
            "agreement_id": text,
            "agreement_version": {"type": "integer"},
            "retention_days": {"type": "integer"},
            "sent_at": moment,
            "decision": {
                "type": "object",
                "description": "The gateway's signed decision, verified by the node",
                "required": ["outcome", "decided_at", "policy_version", "fields"],
                "properties": {
                    "outcome": {"const": "PERMIT"},
                    "decided_at": moment,
                    "policy_version": text,
                    "fields": {"type": "array", "items": text},
                },
            },
            "fields": {
                "type": "object",
                "description": "The fields the agreement discloses to this party, typed as in "
                "the signal's record schema",
            },
        },
    }


def _explanation_schema() -> dict[str, Any]:
    text = {"type": "string"}
    nullable_text = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["allowed", "sender", "signal", "recipient", "purpose", "on", "reasons"],
        "properties": {
            "allowed": {"type": "boolean"},
            "sender": text,
            "signal": text,
            "recipient": text,
            "purpose": text,
            "on": {"type": "string", "format": "date"},
            "policy_version": text,
            "policy_hash": text,
            "agreement_id": nullable_text,
            "agreement_version": {"type": ["integer", "null"]},
            "legal_basis": nullable_text,
            "fields": {"type": "array", "items": text},
            "retention_days": {"type": ["integer", "null"]},
            "reasons": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "text"],
                    "properties": {"code": text, "text": text},
                },
            },
        },
    }


def problem_statuses() -> set[int]:
    """Every status a NodeError subclass can answer with (the document must list each)."""
    found: set[int] = set()
    stack: list[type[NodeError]] = [NodeError]
    while stack:
        kind = stack.pop()
        found.add(kind.status)
        stack.extend(kind.__subclasses__())
    return found
