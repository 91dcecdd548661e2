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
from collections.abc import Callable, Mapping
from typing import Any

from fastavro.validation import validate

_INT_RANGE = range(-(2**31), 2**31)
_LONG_RANGE = range(-(2**63), 2**63)
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")


def _integer_in(allowed: range) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v in allowed


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _is_aware_datetime(value: object) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() is not None


def _is_uuid(value: object) -> bool:
    if isinstance(value, uuid.UUID):
        return True
    return isinstance(value, str) and _CANONICAL_UUID.match(value) is not None


_Rule = tuple[Callable[[object], bool], str]
_TIMESTAMP_RULE: _Rule = (
    _is_aware_datetime,
    "must be a timestamp with a time zone (e.g. 2027-01-31T09:30Z)",
)
#: (Avro type, logical type) -> (check, rule); a logical type not listed here is left to fastavro
_LOGICAL: dict[tuple[str, str], _Rule] = {
    ("int", "date"): (_is_date, "must be a date (ISO 8601, e.g. 2027-01-31)"),
    ("long", "timestamp-millis"): _TIMESTAMP_RULE,
    ("long", "timestamp-micros"): _TIMESTAMP_RULE,
    ("string", "uuid"): (_is_uuid, "must be a UUID (8-4-4-4-12 hexadecimal digits)"),
}
_PRIMITIVE: dict[str, _Rule] = {
    "null": (lambda v: v is None, "must be null"),
    "boolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "int": (_integer_in(_INT_RANGE), "must be a 32-bit integer"),
    "long": (_integer_in(_LONG_RANGE), "must be a 64-bit integer"),
    "float": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "must be a number",
    ),
    "double": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "must be a number",
    ),
    "string": (lambda v: isinstance(v, str), "must be a string"),
    "bytes": (lambda v: isinstance(v, bytes), "must be bytes"),
}


def type_problem(value: object, schema: Any) -> str | None:
    """The rule ``value`` breaks under ``schema`` (a fastavro parsed schema), or None if it fits."""
    if isinstance(schema, list):
        return _union_problem(value, schema)
    if isinstance(schema, str):
        return _primitive_problem(value, schema, None, schema)
    if isinstance(schema, Mapping) and isinstance(schema.get("type"), str):
        return _complex_problem(value, schema)
    return _lenient(value, schema)


def _complex_problem(value: object, schema: Mapping[str, Any]) -> str | None:
    kind = schema["type"]
    if kind == "enum":
        fits = isinstance(value, str) and value in schema.get("symbols", ())
        return None if fits else "must be one of its symbols"
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            return "must be a list"
        problems = (type_problem(item, schema["items"]) for item in value)
        problem = next((p for p in problems if p is not None), None)
        return None if problem is None else f"every item {problem}"
    logical = schema.get("logicalType")
    return _primitive_problem(value, kind, logical if isinstance(logical, str) else None, schema)


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


def _primitive_problem(value: object, kind: str, logical: str | None, schema: Any) -> str | None:
    rule = _PRIMITIVE.get(kind) if logical is None else _LOGICAL.get((kind, logical))
    if rule is None:
        return _lenient(value, schema)
    check, text = rule
    return None if check(value) else text


def _lenient(value: object, schema: Any) -> str | None:
    """Types sigex's schemas do not use (records, maps, fixed, decimals): fastavro decides."""
    try:
        fits = bool(validate(value, schema, raise_errors=False))
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        fits = False
    return None if fits else "does not match its Avro type"
