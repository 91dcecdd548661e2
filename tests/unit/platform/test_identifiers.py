"""Identifier checks: the elfproef, and the check digit that completes a BSN."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigex.errors import InvalidIdentifier
from sigex.identifiers import (
    bsn_check_digit,
    check_bsn,
    check_kvk,
    check_loonheffingennummer,
    check_municipality,
    check_oin,
    is_valid_bsn,
    synthetic_bsn,
    synthetic_loonheffingennummer,
)


@given(st.integers(min_value=0, max_value=10**8 - 1))
def test_the_check_digit_completes_a_valid_bsn_or_there_is_none(prefix: int) -> None:
    first_eight = f"{prefix:08d}"
    digit = bsn_check_digit(first_eight)
    if digit is not None:
        assert is_valid_bsn(first_eight + digit)
    else:
        assert not any(is_valid_bsn(first_eight + str(d)) for d in range(10))


def test_a_prefix_whose_sum_is_below_eleven_has_no_check_digit() -> None:
    assert bsn_check_digit("10000000") is None  # 9 * 1 = 9: the elfproef needs a positive sum
    assert not is_valid_bsn("100000009")


def test_a_bad_bsn_names_the_field_and_rule_never_the_value() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        check_bsn("123456788", "worker_bsn")
    assert "worker_bsn" in str(refused.value) and "elfproef" in str(refused.value)
    assert "123456788" not in str(refused.value)


def test_a_loonheffingennummer_has_an_l_and_a_valid_fiscal_number() -> None:
    with pytest.raises(InvalidIdentifier, match="letter L"):
        check_loonheffingennummer("123456789X01")


def test_synthetic_identifiers_pass_their_checks() -> None:
    from sigex.identifiers import synthetic_bsn, synthetic_loonheffingennummer

    assert all(is_valid_bsn(synthetic_bsn(seed)) for seed in range(0, 10**8, 7_654_321))
    assert check_loonheffingennummer(synthetic_loonheffingennummer(123456780))


def _in_other_digits(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


@pytest.mark.parametrize(
    ("check", "valid"),
    [
        (check_bsn, synthetic_bsn(11122233)),
        (check_kvk, "12345678"),
        (check_loonheffingennummer, synthetic_loonheffingennummer(123456780)),
        (check_municipality, "GM0363"),
        (check_oin, "00000099123456780000"),
    ],
)
def test_an_identifier_is_refused_with_a_final_newline_or_non_ascii_digits(
    check: Callable[[str, str], str], valid: str
) -> None:
    # Each would otherwise pass with another spelling of the same number, and a BSN would
    # get another pseudonym: the person's signals would hide from a search of the log.
    assert check(valid, "f") == valid
    for spelling in (
        f"{valid}\n",
        _in_other_digits(valid, 0x0660),  # Arabic-Indic digits
        _in_other_digits(valid, 0xFF10),  # fullwidth digits
    ):
        with pytest.raises(InvalidIdentifier):
            check(spelling, "f")
