"""Identifier checks: the elfproef, and the check digit that completes a BSN."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigex.errors import InvalidIdentifier
from sigex.identifiers import bsn_check_digit, check_bsn, check_loonheffingennummer, is_valid_bsn


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
