"""Exact type checks of a value against a field's parsed Avro schema, logical types included.

fastavro's own validation is lenient where a record comes from outside: it
takes an integer for a ``date`` or a ``timestamp-millis`` (as days or
milliseconds since 1970), any string for a ``uuid``, ``True`` for an ``int``,
and a naive ``datetime`` it then reads in the machine's local time zone. A
partner's record must say what it means, so here:

- ``date`` needs a :class:`datetime.date` (not a datetime, not a number);
- ``timestamp-millis`` / ``timestamp-micros`` need a timezone-aware
  :class:`datetime.datetime`;
- ``uuid`` needs a :class:`uuid.UUID` or a string in the canonical
  8-4-4-4-12 hexadecimal form;
- ``int`` and ``long`` need an integer (not a bool) in their range, ``boolean``
  a bool, ``string`` a str, ``bytes`` bytes, an enum one of its symbols.

:func:`type_problem` returns the rule that was broken, or ``None``; the rule
describes the expected type and never repeats the value.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastavro.validation import validate

_INT_RANGE = range(-(2**31), 2**31)
_LONG_RANGE = range(-(2**63), 2**63)
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_TIMESTAMPS = ("timestamp-millis", "timestamp-micros")


def type_problem(value: object, schema: Any) -> str | None:
    """The rule ``value`` breaks under ``schema`` (a fastavro parsed schema), or None if it fits."""
    if isinstance(schema, list):
        return _union_problem(value, schema)
    if isinstance(schema, str):
        return _primitive_problem(value, schema, None)
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if kind == "enum":
            symbols = schema.get("symbols", ())
            return (
                None
                if isinstance(value, str) and value in symbols
                else "must be one of its symbols"
            )
        if kind == "array":
            if not isinstance(value, (list, tuple)):
                return "must be a list"
            for item in value:
                problem = type_problem(item, schema["items"])
                if problem is not None:
                    return f"every item {problem}"
            return None
        if isinstance(kind, str):
            return _primitive_problem(
                value, kind, logical if isinstance(logical, str) else None, schema
            )
    return _lenient(value, schema)


def _union_problem(value: object, branches: list[Any]) -> str | None:
    problems = []
    for branch in branches:
        problem = type_problem(value, branch)
        if problem is None:
            return None
        problems.append(problem)
    if value is None:
        return "must not be null"
    meaningful = [p for p, b in zip(problems, branches, strict=True) if b != "null"]
    return meaningful[0] if len(meaningful) == 1 else "does not fit any type of its union"


def _primitive_problem(
    value: object, kind: str, logical: str | None, schema: Any = None
) -> str | None:
    if kind == "null":
        return None if value is None else "must be null"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        if logical == "date":
            fits = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            return None if fits else "must be a date (ISO 8601, e.g. 2027-01-31)"
        return _integer_problem(value, _INT_RANGE, "a 32-bit integer")
    if kind == "long":
        if logical in _TIMESTAMPS:
            fits = isinstance(value, dt.datetime) and value.utcoffset() is not None
            return None if fits else "must be a timestamp with a time zone (e.g. 2027-01-31T09:30Z)"
        return _integer_problem(value, _LONG_RANGE, "a 64-bit integer")
    if kind in ("float", "double"):
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if fits else "must be a number"
    if kind == "string":
        if logical == "uuid":
            fits = isinstance(value, uuid.UUID) or (
                isinstance(value, str) and _CANONICAL_UUID.match(value) is not None
            )
            return None if fits else "must be a UUID (8-4-4-4-12 hexadecimal digits)"
        return None if isinstance(value, str) else "must be a string"
    if kind == "bytes" and logical is None:
        return None if isinstance(value, bytes) else "must be bytes"
    return _lenient(value, schema if schema is not None else kind)


def _integer_problem(value: object, allowed: range, what: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value in allowed:
        return None
    return f"must be {what}"


def _lenient(value: object, schema: Any) -> str | None:
    """Types sigex's schemas do not use (records, maps, fixed, decimals): fastavro decides."""
    try:
        fits = bool(validate(value, schema, raise_errors=False))
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        fits = False
    return None if fits else "does not match its Avro type"
