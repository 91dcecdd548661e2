"""One canonical JSON form for every byte string sigex hashes or signs: RFC 8785 (JCS).

RFC 8785, the JSON Canonicalization Scheme, fixes one serialisation of a JSON value:
no insignificant whitespace, object members sorted by their names' UTF-16 code units,
strings in UTF-8 with only the escapes ECMAScript's ``JSON.stringify`` makes, numbers
as ECMAScript prints them. sigex's signed and hashed documents (access records,
checkpoints, the party directory, delivery decisions, replay-ledger entries) hold only
strings, integers, booleans, null, arrays and objects, so this module implements JCS
for that subset and refuses the rest (floats, integers beyond 2**53, lone surrogates)
rather than produce bytes another implementation would write differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sigex.errors import SigexError

#: JCS numbers are IEEE 754 doubles: integers are exact only up to this magnitude.
LARGEST_EXACT_INTEGER = 2**53 - 1


class NotCanonicalisable(SigexError):
    """A value outside the JSON subset sigex canonicalises (RFC 8785 without floats)."""


# Made once: ``json.dumps`` with any non-default argument builds a new encoder per call.
_FLAT_OBJECT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_STRING = json.JSONEncoder(ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (str, int, bool, None, sequences and str-keyed maps)."""
    flat = _flat_object(value)
    if flat is not None:
        return flat
    parts: list[str] = []
    _write(value, parts)
    return _utf8("".join(parts))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCanonicalisable("a string holds a lone surrogate, which is not JSON") from None


def _flat_object(value: Any) -> bytes | None:
    """The bytes of a flat object (ASCII names; strings, exact integers, booleans, null and
    arrays of strings as values) in one call to the C JSON encoder, or None for anything else.

    Most of what sigex signs and hashes is such an object: access records, delivery
    decisions, ledger entries. For them the standard encoder with sorted keys, no spaces
    and ``ensure_ascii=False`` writes exactly the RFC 8785 bytes: ASCII names sort the same
    by code point as by UTF-16 code unit, strings are escaped as ``_write`` escapes them
    (it uses the same encoder), and no float reaches it. It is about eight times faster
    than the general walk, which everything else still takes.
    """
    if type(value) is not dict:
        return None
    for name, item in value.items():
        if not isinstance(name, str) or not name.isascii():
            return None
        kind = type(item)
        if isinstance(item, str) or item is None or kind is bool:
            continue
        if kind is int:
            if -LARGEST_EXACT_INTEGER <= item <= LARGEST_EXACT_INTEGER:
                continue
            return None  # the general walk says why it is refused
        if kind is list or kind is tuple:
            if all(isinstance(element, str) for element in item):
                continue
            return None
        return None
    return _utf8(_FLAT_OBJECT.encode(value))


def _write(value: Any, parts: list[str]) -> None:
    if value is None or isinstance(value, bool):
        parts.append(json.dumps(value))
    elif isinstance(value, int):
        if abs(value) > LARGEST_EXACT_INTEGER:
            raise NotCanonicalisable(f"an integer beyond 2**53 has no exact JSON number: {value}")
        parts.append(str(value))
    elif isinstance(value, str):
        parts.append(_STRING.encode(value))
    elif isinstance(value, Mapping):
        _write_object(value, parts)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        parts.append("[")
        for position, item in enumerate(value):
            if position:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise NotCanonicalisable(f"{type(value).__name__} is not canonicalised (RFC 8785 subset)")


def _write_object(value: Mapping[Any, Any], parts: list[str]) -> None:
    names = list(value)
    if not all(isinstance(name, str) for name in names):
        raise NotCanonicalisable("object member names must be strings")
    parts.append("{")
    for position, name in enumerate(sorted(names, key=_utf16_order)):
        if position:
            parts.append(",")
        parts.append(_STRING.encode(name))
        parts.append(":")
        _write(value[name], parts)
    parts.append("}")


def _utf16_order(name: str) -> bytes:
    """RFC 8785 section 3.2.3: members sort by the UTF-16 code units of their names."""
    return name.encode("utf-16-be", errors="surrogatepass")
