"""Conventions the publisher, the gateway and the subscriber share on the wire.

- **Headers** carry no personal data: the W3C ``traceparent``, the envelope
  version and, on dead letters, reason codes.
- **The gateway's decision** travels inside the delivery envelope as canonical
  JSON, signed by the gateway (:class:`DeliveryDecision`). It carries the
  audit pseudonyms of the data subjects, so a recipient's receipts can name
  them without ever holding the audit service's key.
- **Data subjects** of a record are the values of its fields classified
  ``identifier.bsn`` (a list field counts each value); a record with none has
  its key field as subject (an organisation or an earlier signal).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sigex.canonical import canonical_json
from sigex.errors import SigexError
from sigex.schemas.catalogue import SignalSpec

BSN_CLASSIFICATION = "identifier.bsn"
TRACEPARENT = "traceparent"
ENVELOPE_VERSION_HEADER = "sigex-envelope"
REASONS_HEADER = "sigex-reasons"
SOURCE_HEADER = "sigex-source"
ENVELOPE_VERSION = b"1"
DECISION_VERSION = 1

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class ProtocolError(SigexError):
    """A header or decision on the wire does not have the documented form."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """W3C trace context: one trace per published signal, one span per operation."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @classmethod
    def parse(cls, header: bytes | str | None) -> TraceContext:
        text = header.decode("ascii", "replace") if isinstance(header, bytes) else header
        match = _TRACEPARENT.fullmatch(text or "")
        if match is None or match.group(1) == "0" * 32:
            raise ProtocolError("the traceparent header is missing or malformed")
        return cls(match.group(1), match.group(2))

    def header(self) -> bytes:
        return f"00-{self.trace_id}-{self.span_id}-01".encode("ascii")

    def child(self, span_id: str) -> TraceContext:
        return TraceContext(self.trace_id, span_id)


def header_value(headers: Sequence[tuple[str, bytes]] | None, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


def data_subjects(spec: SignalSpec, record: Mapping[str, object]) -> tuple[str, ...]:
    """The data subjects of ``record`` (BSNs, or else the key field's value), sorted, unique."""
    found: set[str] = set()
    for name, classification in spec.classifications.items():
        if classification != BSN_CLASSIFICATION:
            continue
        value = record.get(name)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list | tuple):
            found.update(v for v in value if isinstance(v, str))
    if not found:
        key = record.get(spec.key_field)
        if key is not None:
            found.add(str(key))
    return tuple(sorted(found))


def record_key_subject(spec: SignalSpec, record: Mapping[str, object]) -> str:
    """What the Kafka record key pseudonymises: the key field's value."""
    value = record.get(spec.key_field)
    if value is None:
        raise ProtocolError(f"signal {spec.name}: key field {spec.key_field!r} is empty")
    return str(value)


@dataclass(frozen=True, slots=True)
class DeliveryDecision:
    """The gateway's decision for one delivery, signed by the gateway inside the envelope."""

    message_id: str
    trace_id: str
    recipient: str
    purpose: str
    agreement_id: str
    agreement_version: int
    legal_basis: str
    policy_version: str
    fields: tuple[str, ...]
    retention_days: int
    subjects: tuple[str, ...]

    def to_bytes(self) -> bytes:
        body = {
            "v": DECISION_VERSION,
            "message_id": self.message_id,
            "trace_id": self.trace_id,
            "recipient": self.recipient,
            "purpose": self.purpose,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "legal_basis": self.legal_basis,
            "policy_version": self.policy_version,
            "fields": sorted(self.fields),
            "retention_days": self.retention_days,
            "subjects": sorted(self.subjects),
        }
        return canonical_json(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeliveryDecision:
        try:
            body = json.loads(data)
            if body.get("v") != DECISION_VERSION:
                raise ProtocolError("the gateway decision has an unknown version")
            return cls(
                message_id=str(body["message_id"]),
                trace_id=str(body["trace_id"]),
                recipient=str(body["recipient"]),
                purpose=str(body["purpose"]),
                agreement_id=str(body["agreement_id"]),
                agreement_version=int(body["agreement_version"]),
                legal_basis=str(body["legal_basis"]),
                policy_version=str(body["policy_version"]),
                fields=tuple(str(f) for f in body["fields"]),
                retention_days=int(body["retention_days"]),
                subjects=tuple(str(s) for s in body["subjects"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProtocolError("the gateway decision is malformed") from error


def to_json_value(value: object) -> Any:
    """A decoded Avro value as plain JSON (dates and times in ISO 8601)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def _logical(schema: Any) -> tuple[str | None, Any]:
    if isinstance(schema, list):
        for branch in schema:
            if branch != "null":
                return _logical(branch)
        return None, schema
    if isinstance(schema, dict):
        return schema.get("logicalType"), schema
    return None, schema


def from_json_record(spec: SignalSpec, values: Mapping[str, Any]) -> dict[str, object]:
    """A record read from JSON with dates and timestamps as ISO 8601 strings, made typed."""
    record: dict[str, object] = {}
    for name, value in values.items():
        schema = spec.field_schemas.get(name)
        logical, _ = _logical(schema)
        if isinstance(value, str) and logical == "date":
            record[name] = _parse(name, value, date.fromisoformat)
        elif isinstance(value, str) and logical in ("timestamp-millis", "timestamp-micros"):
            record[name] = _parse(name, value, datetime.fromisoformat)
        else:
            record[name] = value
    return record


class JsonFieldError(ProtocolError):
    """A field of a JSON record cannot be read as its type; names the field, never the value."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"field {field!r}: {rule}")


def _parse(name: str, text: str, parse: Any) -> object:
    try:
        return parse(text)
    except ValueError as error:
        raise JsonFieldError(name, "not an ISO 8601 date or time") from error


# -- access records on the wire ------------------------------------------------------------------

#: A Kafka record on the audit or a receipts topic carries one or more access records,
#: each in its canonical JSON form (which never contains a newline), separated by "\n".
#: Packing them saves one Kafka send per record, the gateway's main cost per signal.
MAX_RECORDS_PER_MESSAGE = 200


def pack_access_records(entries: Sequence[bytes]) -> list[bytes]:
    """Canonical access records, newline-separated, at most 200 per Kafka record."""
    return [
        b"\n".join(entries[start : start + MAX_RECORDS_PER_MESSAGE])
        for start in range(0, len(entries), MAX_RECORDS_PER_MESSAGE)
    ]


def unpack_access_records(value: bytes) -> list[bytes]:
    """The canonical access records in one Kafka record (empty lines are not records)."""
    return [line for line in value.split(b"\n") if line]
