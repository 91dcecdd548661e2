"""sigex.canonical: RFC 8785 (JCS) for the JSON subset sigex signs and hashes."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigex import canonical
from sigex.canonical import NotCanonicalisable, canonical_json


def test_rfc8785_member_order_is_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3's sorting example (its number-valued members as integers)
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    document = {name: position for position, name in enumerate(names)}
    expected_order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    decoded = json.loads(canonical_json(document))
    assert list(decoded) == expected_order
    # code-point order (Python's sort_keys) would put U+FB33 before U+1F600: JCS does not
    assert sorted(names) != expected_order


def test_rfc8785_string_escapes_and_no_whitespace() -> None:
    value = {"b": ["\u20ac", "\n\t\x01\x1f", '"\\/'], "a": None, "c": True, "d": -12}
    assert canonical_json(value) == (
        '{"a":null,"b":["\u20ac","\\n\\t\\u0001\\u001f","\\"\\\\/"],"c":true,"d":-12}'
    ).encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 0.1}, 2**53, -(2**53), {1: "a"}, b"bytes", "\ud800", {"x": object()}],
)
def test_values_outside_the_subset_are_refused(value: object) -> None:
    with pytest.raises(NotCanonicalisable):
        canonical_json(value)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_canonical_bytes_round_trip_and_are_stable(value: object) -> None:
    encoded = canonical_json(value)
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded


@given(st.dictionaries(st.text(alphabet="abcdefghij", max_size=8), st.integers(0, 10**6)))
def test_for_ascii_names_it_is_the_compact_sorted_form_sigex_always_wrote(
    value: dict[str, int],
) -> None:
    # the bytes of records already in logs and signatures already made stay what they were
    legacy = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == legacy.encode("utf-8")


def _general_walk(value: object) -> bytes:
    """The general serialiser alone, without the flat-object fast path."""
    parts: list[str] = []
    canonical._write(value, parts)
    return "".join(parts).encode("utf-8")


class _Code(StrEnum):
    """A str subclass, as reason codes and roles are: written as its string value."""

    PLAIN = "PLAIN"
    ODD = 'line\nbreak \u00e9 "quoted"'


_flat_values = st.one_of(
    st.sampled_from(_Code),
    st.lists(st.sampled_from(_Code), max_size=3),
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",))), max_size=4),
    st.tuples(st.text(max_size=5), st.text(max_size=5)),
)


@given(st.dictionaries(st.text(max_size=6), _flat_values, max_size=8))
def test_the_flat_object_fast_path_writes_what_the_general_walk_writes(
    value: dict[str, object],
) -> None:
    # any names (non-ASCII ones take the general walk), any strings, control characters too
    assert canonical_json(value) == _general_walk(value)


@pytest.mark.parametrize(
    "value",
    [{"big": 2**53}, {"f": 1.5}, {"nested": {"a": 1}}, {"list": [1, 2]}, {"s": "\ud800"}],
)
def test_what_the_fast_path_does_not_take_is_still_judged_by_the_general_walk(
    value: dict[str, object],
) -> None:
    try:
        expected: bytes | type[NotCanonicalisable] = _general_walk(value)
    except (NotCanonicalisable, UnicodeEncodeError):
        expected = NotCanonicalisable
    if expected is NotCanonicalisable:
        with pytest.raises(NotCanonicalisable):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected
