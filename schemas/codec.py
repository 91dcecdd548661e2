"""Encoding and validating records of a signal: whole records and one field at a time.

- :func:`validate_record` checks a record against its schema (exact types,
  logical types included) and runs the identifier check of every
  identifier-bearing field.
- :func:`encode_record` / :func:`decode_record` use schemaless Avro binary
  (the schema travels as a fingerprint, not in the payload).
- :func:`encode_fields` / :func:`decode_fields` encode each field on its own
  under that field's schema, so the envelope can commit to, and later drop,
  individual fields. Decoding a subset is allowed: missing fields stay absent.

Every error names the signal, the field and the rule, never a value.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate

from sigex.errors import InvalidIdentifier
from sigex.identifiers import CHECKS
from sigex.schemas.catalogue import SignalSpec
from sigex.schemas.errors import FieldIdentifierInvalid, SchemaViolation
from sigex.schemas.typecheck import type_problem

# What fastavro raises on a datum that does not fit; caught and replaced by a
# SchemaViolation that names the field but never repeats the datum.
_WRITE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, OverflowError, struct.error)
_READ_ERRORS = (
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    UnicodeError,
    OverflowError,  # a date or timestamp beyond what Python can hold
)


def check_identifiers(spec: SignalSpec, record: Mapping[str, object]) -> None:
    """Run the identifier check of every annotated field that holds a value.

    Raises :class:`FieldIdentifierInvalid`, which is both a SchemaViolation and
    an InvalidIdentifier.
    """
    try:
        _check_identifiers(spec, record)
    except InvalidIdentifier as error:
        raise FieldIdentifierInvalid(spec.name, error) from None


def _check_identifiers(spec: SignalSpec, record: Mapping[str, object]) -> None:
    for name, kind in spec.identifier_checks.items():
        value = record.get(name)
        if value is None:
            continue
        check = CHECKS[kind]
        if isinstance(value, str):
            check(value, name)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise SchemaViolation(spec.name, f"{name}[{index}]", "must be a string")
                check(item, f"{name}[{index}]")
        else:
            raise SchemaViolation(spec.name, name, f"must be a string holding a {kind}")


def _check_shape(spec: SignalSpec, record: Mapping[str, object]) -> None:
    unknown = [name for name in record if name not in spec.classifications]
    if unknown:
        first = sorted(map(str, unknown))[0]
        raise SchemaViolation(spec.name, first, "is not a field of the signal")
    for name in spec.field_names:
        if name not in record and name in spec.required_fields:
            raise SchemaViolation(spec.name, name, "is required")


def _fits(value: object, schema: Any) -> bool:
    """True when ``value`` fits ``schema``; fastavro's errors (which quote values) stay inside."""
    try:
        return bool(validate(value, schema, raise_errors=False))
    except _WRITE_ERRORS:
        return False


def _type_rule(spec: SignalSpec, name: str) -> str:
    return f"does not match its Avro type in version {spec.version}"


def _find_bad_field(spec: SignalSpec, record: Mapping[str, object]) -> SchemaViolation:
    """Name the first field that does not fit, after a whole-record write failed."""
    _check_shape(spec, record)
    for name in spec.field_names:
        if name in record and not _fits(record[name], spec.field_schemas[name]):
            return SchemaViolation(spec.name, name, _type_rule(spec, name))
    return SchemaViolation(spec.name, "(record)", "cannot be encoded with its schema")


def validate_record(spec: SignalSpec, record: Mapping[str, object]) -> None:
    """Check field names, required fields, exact Avro types and identifier checks of ``record``.

    Types are checked exactly, logical types included (see :mod:`sigex.schemas.typecheck`):
    stricter than what fastavro would coerce while encoding.
    """
    _check_shape(spec, record)
    _check_types(spec, record, then_fits=True)
    check_identifiers(spec, record)


def _check_types(spec: SignalSpec, record: Mapping[str, object], *, then_fits: bool) -> None:
    """The exact type check of every field present; with ``then_fits`` also fastavro's."""
    for name in spec.field_names:
        if name not in record:
            continue
        problem = type_problem(record[name], spec.field_schemas[name])
        if problem is not None:
            raise SchemaViolation(spec.name, name, problem)
        if then_fits and not _fits(record[name], spec.field_schemas[name]):
            raise SchemaViolation(spec.name, name, _type_rule(spec, name))


def validate_decoded(spec: SignalSpec, fields: Mapping[str, object]) -> None:
    """Check a record that :func:`decode_fields` produced: names, required fields, identifiers.

    Decoding already gave each value exactly its schema's type (a ``date`` as a date, a
    timestamp as an aware datetime, an ``int`` in range, a ``uuid`` as a UUID, an enum
    one of its symbols), which is all the type checks of :func:`validate_record` would
    find; what decoding cannot know (a missing field, an elfproef) is checked here. A
    test holds the two to the same verdict on decoded records.
    """
    _check_shape(spec, fields)
    check_identifiers(spec, fields)


def encode_record(spec: SignalSpec, record: Mapping[str, object]) -> bytes:
    """The record as schemaless Avro binary (strict: unknown or missing fields are refused)."""
    check_identifiers(spec, record)
    buffer = io.BytesIO()
    try:
        schemaless_writer(buffer, spec.parsed_schema, dict(record), strict=True)
    except _WRITE_ERRORS as error:
        raise _find_bad_field(spec, record) from error
    return buffer.getvalue()


def decode_record(
    spec: SignalSpec, payload: bytes, writer: SignalSpec | None = None
) -> dict[str, Any]:
    """Read schemaless Avro written with ``writer`` (default: ``spec``) as a record of ``spec``."""
    writer_spec = spec if writer is None else writer
    buffer = io.BytesIO(payload)
    try:
        if writer_spec is spec:
            value = schemaless_reader(buffer, spec.parsed_schema, None)
        else:
            value = schemaless_reader(buffer, writer_spec.parsed_schema, spec.parsed_schema)
    except _READ_ERRORS as error:
        raise SchemaViolation(spec.name, "(record)", "is not valid Avro binary") from error
    if buffer.tell() != len(payload):
        raise SchemaViolation(spec.name, "(record)", "has trailing bytes after the record")
    if not isinstance(value, dict):
        raise SchemaViolation(spec.name, "(record)", "did not decode to a record")
    return value


def encode_fields(spec: SignalSpec, record: Mapping[str, object]) -> dict[str, bytes]:
    """Each field of the record as Avro binary under its own schema, in schema order.

    A missing field that has a default is encoded with its default; a missing
    required field, an unknown field or a value that does not fit is refused.
    """
    _check_shape(spec, record)
    check_identifiers(spec, record)
    return _encode_each(spec, record)


def validated_fields(spec: SignalSpec, record: Mapping[str, object]) -> dict[str, bytes]:
    """:func:`validate_record` and :func:`encode_fields` in one pass over the record.

    The exact type checks of :func:`validate_record` run first; the strict Avro
    writer then refuses anything else that does not fit, as its separate check would.
    """
    _check_shape(spec, record)
    _check_types(spec, record, then_fits=False)
    check_identifiers(spec, record)
    return _encode_each(spec, record)


def _encode_each(spec: SignalSpec, record: Mapping[str, object]) -> dict[str, bytes]:
    encoded: dict[str, bytes] = {}
    for name in spec.field_names:
        value = record[name] if name in record else spec.field_defaults[name]
        buffer = io.BytesIO()
        try:
            schemaless_writer(buffer, spec.field_schemas[name], value, strict=True)
        except _WRITE_ERRORS as error:
            raise SchemaViolation(spec.name, name, _type_rule(spec, name)) from error
        encoded[name] = buffer.getvalue()
    return encoded


def decode_fields(spec: SignalSpec, fields: Mapping[str, bytes]) -> dict[str, object]:
    """Decode the fields present in ``fields``; absent ones stay absent (no defaults are filled)."""
    decoded: dict[str, object] = {}
    for name, data in fields.items():
        schema = spec.field_schemas.get(name)
        if schema is None:
            raise SchemaViolation(spec.name, name, "is not a field of the signal")
        buffer = io.BytesIO(data)
        try:
            decoded[name] = schemaless_reader(buffer, schema, None)
        except _READ_ERRORS as error:
            rule = "is not valid Avro binary for its type"
            raise SchemaViolation(spec.name, name, rule) from error
        if buffer.tell() != len(data):
            raise SchemaViolation(spec.name, name, "has trailing bytes after the value")
    return decoded
